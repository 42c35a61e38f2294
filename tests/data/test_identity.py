"""Bulk sample identity matches the per-sample interface."""

from __future__ import annotations

from naviewer.data.demo import DigitsDemoDataset
from naviewer.data.folder import ImageFolderDataset
from naviewer.data.identity import sample_identity
from naviewer.jobs import JobContext, RecordingReporter


def test_identity_matches_per_sample_calls(image_tree) -> None:
    for data in (DigitsDemoDataset("test"), ImageFolderDataset(image_tree[0])):
        reporter = RecordingReporter()
        keys, hashes = sample_identity(data, JobContext(reporter))
        assert keys == [data.source_key(i) for i in range(len(data))]
        assert hashes == [data.content_hash(i) for i in range(len(data))]
        assert len(set(hashes)) == len(data) and reporter.progresses[-1][:2] == (len(data), len(data))
