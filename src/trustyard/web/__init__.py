"""The web interface (issue 9): server-rendered pages over the management API, at ``/`` on the registry's port.

``WebInterface`` (``interface.py``) holds the sessions, the templates and the way into the API's handlers;
``routes.web_routes`` binds every page to it. Pages: ``signin``, ``projects``, ``images``, ``operations``.
"""
