"""DatasetRef: what steps pass to each other, and what ZenML stores for lineage."""

from __future__ import annotations

from pydantic import BaseModel


class DatasetRef(BaseModel):
    """A pointer to one version of a dataset (manifest + image store)."""

    name: str
    #: the dataset folder (local path or fsspec URL)
    path: str
    #: the manifest inside it
    manifest: str
    #: sha256 of the manifest bytes; the manifest names every image by the sha256 of its bytes,
    #: so this identifies the dataset's whole content
    content_hash: str
    rows: int
    quarantined: int = 0
    #: DVC's md5 of the dataset folder, once the dataset has been versioned
    dvc_md5: str | None = None

    def with_dvc_md5(self, md5: str | None) -> DatasetRef:
        return self.model_copy(update={"dvc_md5": md5})
