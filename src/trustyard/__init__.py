"""trustyard: a self-hosted, security-first container registry and container-security toolkit.

The package is split into one folder per part (see DESIGN.md); this top-level module only carries the
version so that importing ``trustyard`` stays cheap.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
