"""Configuration: one settings object and one definition of the AWS resources."""

from strata.config.resources import RESOURCES, BucketSpec, QueueSpec, StackResources, TableSpec
from strata.config.routes import ROUTES, RouteSpec, Scope, route_for
from strata.config.settings import Settings, get_settings

__all__ = (
    "RESOURCES",
    "ROUTES",
    "BucketSpec",
    "QueueSpec",
    "RouteSpec",
    "Scope",
    "Settings",
    "StackResources",
    "TableSpec",
    "get_settings",
    "route_for",
)
