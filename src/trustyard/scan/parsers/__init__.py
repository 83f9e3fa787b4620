"""Pure parsers of package databases and metadata files: bytes in, typed records out, one error each.

Nothing here knows about layers, images or components; analyzers call these and build components.
"""
