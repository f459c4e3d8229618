from django.urls import path

from . import views

app_name = "portal"

urlpatterns = [
    path("", views.index, name="index"),
    path("portal/preview", views.preview, name="preview"),
    path("kernels/", views.kernels, name="kernels"),
    path("kernels/current.txt", views.current_kernels, name="current-kernels"),
    path("farms/<str:farmer_id>/", views.farm_machines, name="farm"),
    path("farms/<str:farmer_id>", views.farm_machines),
]
