"""The steps behind `selfsup embed | index | search | cluster | dedup`: a run's encoder over a
collection of images, and what users do with the embeddings folder it writes.

Folders and tar shards are always streamed, each file decoded on its own, so that every file
gets its row and one that cannot be decoded is listed rather than replaced or dropped.
"""

from selfsup.collection.groups import cluster_collection, dedup_collection, map_collection
from selfsup.collection.runs import (
    collection_images,
    embed_run,
    encoder_fingerprint,
    feature_model,
    images_by_id,
    open_store,
)
from selfsup.collection.search import (
    embed_files,
    index_collection,
    open_index,
    search_collection,
)

__all__ = [
    "cluster_collection",
    "collection_images",
    "dedup_collection",
    "embed_files",
    "embed_run",
    "encoder_fingerprint",
    "feature_model",
    "images_by_id",
    "index_collection",
    "map_collection",
    "open_index",
    "open_store",
    "search_collection",
]
