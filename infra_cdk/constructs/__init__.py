"""One construct per concern, each configured by a frozen props dataclass."""

from infra_cdk.constructs.api import Api, ApiProps
from infra_cdk.constructs.documents import Documents, DocumentsProps
from infra_cdk.constructs.functions import Functions, FunctionsProps
from infra_cdk.constructs.models import ModelEndpoint, ModelEndpointProps, Models, ModelsProps
from infra_cdk.constructs.search import Search, SearchProps
from infra_cdk.constructs.tables import Tables, TablesProps

__all__ = (
    "Api",
    "ApiProps",
    "Documents",
    "DocumentsProps",
    "Functions",
    "FunctionsProps",
    "ModelEndpoint",
    "ModelEndpointProps",
    "Models",
    "ModelsProps",
    "Search",
    "SearchProps",
    "Tables",
    "TablesProps",
)
