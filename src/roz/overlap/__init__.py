"""Data-overlap analysis: near-duplicates of test images in a pretraining corpus, clean test sets,
and how much measured accuracy/robustness was owed to overlap (see docs/overlap.md)."""

from roz.overlap.analysis import overlap_indices, owed_to_overlap, rescore
from roz.overlap.calibrate import (alter_image, calibrate_synthetic, calibrate_with_ground_truth, evaluate_detection,
                                   load_ground_truth, pick_threshold)
from roz.overlap.clean import SubsetDataset, build_manifest, filter_dataset, read_manifest, write_manifest
from roz.overlap.detect import METHODS, OverlapDetector, find_overlap, list_images
from roz.overlap.report import overlap_report, world_detection

__all__ = ["METHODS", "OverlapDetector", "SubsetDataset", "alter_image", "build_manifest", "calibrate_synthetic",
           "calibrate_with_ground_truth", "evaluate_detection", "filter_dataset", "find_overlap", "list_images",
           "load_ground_truth", "overlap_indices", "overlap_report", "owed_to_overlap", "pick_threshold",
           "read_manifest", "rescore", "world_detection", "write_manifest"]
