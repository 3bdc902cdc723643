"""Configuration: one settings object and one definition of the AWS resources."""

from strata.config.resources import RESOURCES, BucketSpec, QueueSpec, StackResources, TableSpec
from strata.config.settings import Settings, get_settings

__all__ = ("RESOURCES", "BucketSpec", "QueueSpec", "Settings", "StackResources", "TableSpec", "get_settings")
