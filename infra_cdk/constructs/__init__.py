"""One construct per concern, each configured by a frozen props dataclass."""

from infra_cdk.constructs.api import Api, ApiProps
from infra_cdk.constructs.functions import Functions, FunctionsProps
from infra_cdk.constructs.models import (
    ChatModel,
    ChatModelProps,
    ContainerProps,
    EmbeddingModel,
    EmbeddingModelProps,
    Models,
    ModelsProps,
)
from infra_cdk.constructs.network import Network, NetworkProps
from infra_cdk.constructs.search import Search, SearchProps
from infra_cdk.constructs.storage import Storage, StorageProps
from infra_cdk.constructs.tables import Tables, TablesProps

__all__ = (
    "Api",
    "ApiProps",
    "ChatModel",
    "ChatModelProps",
    "ContainerProps",
    "EmbeddingModel",
    "EmbeddingModelProps",
    "Functions",
    "FunctionsProps",
    "Models",
    "ModelsProps",
    "Network",
    "NetworkProps",
    "Search",
    "SearchProps",
    "Storage",
    "StorageProps",
    "Tables",
    "TablesProps",
)
