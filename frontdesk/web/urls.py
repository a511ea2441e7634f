from django.contrib.auth import views as auth_views
from django.urls import path

from frontdesk.web import views

urlpatterns = [
    path("", views.home, name="web-home"),
    path("doctor", views.doctor, name="web-doctor"),
    path("login", auth_views.LoginView.as_view(template_name="web/login.html", redirect_authenticated_user=True),
         name="web-login"),
    path("logout", auth_views.LogoutView.as_view(), name="web-logout"),
]
