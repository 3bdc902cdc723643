"""``strata cost``: the monthly cost of a deployment from its synthesized template (no CDK import)."""

from infra_cdk.cost.model import (
    CostModelError,
    Estimate,
    PriceTable,
    PriceTableError,
    Profile,
    ProfileError,
    ResourceCost,
    Unpriced,
    estimate,
    load_prices,
    load_profile,
    load_profile_file,
    parse_profile,
)

__all__ = (
    "CostModelError",
    "Estimate",
    "PriceTable",
    "PriceTableError",
    "Profile",
    "ProfileError",
    "ResourceCost",
    "Unpriced",
    "estimate",
    "load_prices",
    "load_profile",
    "load_profile_file",
    "parse_profile",
)
