"""Tools: the ``cloud-shunt`` command, operator checks and the all-in-one
cluster for demos and tests."""
