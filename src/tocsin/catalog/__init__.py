"""Services, components, business areas, assets and their dependencies (CMDB-lite)."""
