"""Datasets as uint8 tensors (loaders, IDX files, label subsets) or streamed from image files."""

from selfsup.data.base import ImageDataset
from selfsup.data.datasets import DATASETS, load_dataset, open_stream
from selfsup.data.files import ImageFiles
from selfsup.data.folder import FolderReport, folder_image_sizes, load_folder
from selfsup.data.idx import read_idx
from selfsup.data.neighbours import pixel_neighbours
from selfsup.data.sampling import label_fraction_indices, parse_label_fraction
from selfsup.data.shards import TarShards, write_shards
from selfsup.data.stats import dataset_stats, normalize, sample_stats

__all__ = [
    "DATASETS",
    "FolderReport",
    "ImageDataset",
    "ImageFiles",
    "TarShards",
    "dataset_stats",
    "folder_image_sizes",
    "label_fraction_indices",
    "load_dataset",
    "load_folder",
    "normalize",
    "open_stream",
    "parse_label_fraction",
    "pixel_neighbours",
    "read_idx",
    "sample_stats",
    "write_shards",
]
