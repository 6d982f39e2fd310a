"""The sync daemon: archives objects of mapped containers (see issue)."""
