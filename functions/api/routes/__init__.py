"""The api function's routes, one module per resource (each an ``APIRouter``)."""
