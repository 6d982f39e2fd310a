"""Spliced container listings (work in progress)."""


class ListingContext:
    def __init__(self, shunt, profile):
        self.shunt = shunt
        self.profile = profile

    def handle(self, env, start_response):
        return self.shunt.app(env, start_response)
