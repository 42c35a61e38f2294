

def test_a_pipe_named_provenance_json_is_not_read_as_an_earlier_export(tmp_path):
    """Reading it blocked the export for ever, past Cancel and the window's quit (a GUI bad-input sweep)."""
    import os

    from naviewer.workspace.export import is_earlier_export

    os.mkfifo(tmp_path / "provenance.json")
    assert is_earlier_export(tmp_path) is False  # returns: the pipe is never opened
