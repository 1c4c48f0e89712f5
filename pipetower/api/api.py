from ninja import NinjaAPI

api = NinjaAPI(title="Pipetower API", version="1", urls_namespace="api")
