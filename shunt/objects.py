"""Object GET/HEAD served from the bucket (work in progress)."""


class ObjectContext:
    def __init__(self, shunt, profile):
        self.shunt = shunt
        self.profile = profile

    def handle(self, env, start_response, obj):
        return self.shunt.app(env, start_response)
