"""`vqgram serve`: a search page and a JSON API over one index (service.py does the work, app.py speaks HTTP)."""
from .app import create_app, serve
from .service import Limits, SearchService

__all__ = ["Limits", "SearchService", "create_app", "serve"]
