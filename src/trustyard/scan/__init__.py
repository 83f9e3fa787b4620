"""Image analysis: image sources -> layers -> the merged image view -> analyzers -> components.

This package indexes an image: it walks each layer once, computes the final file system view, and asks
analyzers (one per ecosystem) for the components they recognise. Matching components against
vulnerability data is a separate step that only reads the index.
"""
