"""The object store: one small interface over a local directory (default) and S3.

* :mod:`~.base`: the protocol, its errors and the key rules;
* :mod:`~.local` and :mod:`~.s3`: the two stores;
* :mod:`~.opening`: a store from a URI or the settings;
* :mod:`~.publishing`: manifest-last publishing and verified reading.
"""

from warriorflow.store.objects.base import (
    MANIFEST_NAME,
    MiB,
    ObjectNotFoundError,
    ObjectStore,
    join_key,
    normalize_key,
    normalize_prefix,
)
from warriorflow.store.objects.local import LocalObjectStore
from warriorflow.store.objects.opening import (
    object_store_for,
    object_store_from_uri,
    open_object_uri,
    open_objects,
    split_object_uri,
)
from warriorflow.store.objects.publishing import (
    list_published,
    publish,
    read_manifest,
    read_published,
    verify_published,
)
from warriorflow.store.objects.s3 import S3ObjectStore, map_s3_error

__all__ = [
    "MANIFEST_NAME", "MiB", "ObjectNotFoundError", "ObjectStore", "join_key", "normalize_key", "normalize_prefix",
    "LocalObjectStore", "S3ObjectStore", "map_s3_error", "object_store_for", "object_store_from_uri",
    "open_object_uri", "open_objects", "split_object_uri", "list_published", "publish", "read_manifest",
    "read_published", "verify_published",
]
