"""The topic scheme of SPEC sections 3, 6 and 7, pinned as literal strings: every
component builds its topics through core.topics, so a change there shows here."""

from __future__ import annotations

from core import topics
from core.topics import ACL_USER, ALL, ANY


def test_each_topic_reads_as_the_spec_writes_it() -> None:
    assert topics.reading("parks", "NCK", "M1") == "parks/NCK/meters/M1"
    assert topics.batch("hp/parks", "NCK", "G1") == "hp/parks/NCK/gateways/G1"
    assert topics.committed("parks", "NCK", "G1") == "parks/NCK/gateways/G1/committed"
    assert topics.committed_of("parks/NCK/gateways/G1") == "parks/NCK/gateways/G1/committed"
    assert topics.status("parks", ANY, ACL_USER) == "parks/+/gateways/%u/status"
    assert topics.live("parks", "NCK") == "parks/NCK/emissions/live"
    assert topics.alert("parks", ANY, ALL) == "parks/+/alerts/#"
    assert topics.data_filters("parks") == ["parks/+/meters/+", "parks/+/gateways/+"]
    assert topics.data_filters("parks", ["A", "B"]) == [
        "parks/A/meters/+",
        "parks/A/gateways/+",
        "parks/B/meters/+",
        "parks/B/gateways/+",
    ]


def test_only_data_topics_split() -> None:
    assert topics.split_data("hp/parks/NCK/meters/M1", "hp/parks") == ("NCK", "meters", "M1")
    assert topics.split_data(topics.batch("parks", "S", "G"), "parks") == ("S", "gateways", "G")
    for other in (
        topics.live("parks", "NCK"),
        topics.alert("parks", "NCK", "drift"),
        topics.committed("parks", "NCK", "G1"),
        "parks//meters/M1",
        "parks/NCK/meters/",
        "other/NCK/meters/M1",
    ):
        assert topics.split_data(other, "parks") is None
