from opsd.formatting import human_size, text_table


def test_columns_are_as_wide_as_their_widest_cell_two_spaces_apart() -> None:
    lines = text_table(
        [["TASK", "S", "MESSAGE"], ["backup", "ok", "uploaded"], ["publish-metrics", "-", "-"]]
    )
    assert lines == [
        "TASK             S   MESSAGE",
        "backup           ok  uploaded",
        "publish-metrics  -   -",
    ]


def test_minimum_widths_right_alignment_and_a_rule_under_the_header() -> None:
    lines = text_table(
        [["KEY", "SIZE", "NOTE"], ["a", human_size(1536), ""]],
        min_widths=(0, 8),
        right={1},
        rule=True,
    )
    assert lines == ["KEY      SIZE  NOTE", "---  --------  ----", "a      1.5 KB"]


def test_no_rows_is_no_lines() -> None:
    assert text_table([]) == [] and text_table([], rule=True) == []
