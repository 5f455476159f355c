"""Datasets as uint8 tensors: loaders, the IDX reader and class-balanced label subsets."""

from selfsup.data.base import ImageDataset
from selfsup.data.datasets import DATASETS, load_dataset
from selfsup.data.folder import FolderReport, load_folder
from selfsup.data.idx import read_idx
from selfsup.data.neighbours import pixel_neighbours
from selfsup.data.sampling import label_fraction_indices, parse_label_fraction

__all__ = [
    "DATASETS",
    "FolderReport",
    "ImageDataset",
    "label_fraction_indices",
    "load_dataset",
    "load_folder",
    "parse_label_fraction",
    "pixel_neighbours",
    "read_idx",
]
