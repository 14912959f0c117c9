"""The storefront chat server: FastAPI app, routers, schemas, error mapping, widget."""
