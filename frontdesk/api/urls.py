from django.urls import path, re_path, register_converter

from frontdesk.api import views
from frontdesk.api.routes import CONVERTERS, ROUTES

for _name, (_converter, _schema) in CONVERTERS.items():
    register_converter(_converter, _name)

# Unnamed on purpose: every pattern here is described by the OpenAPI document instead.
urlpatterns = [path(route.path, route.view()) for route in ROUTES] + [re_path(r"^[\s\S]*$", views.not_found)]
