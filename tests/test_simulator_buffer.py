"""The gateways' store-and-forward buffer: numbering, stamping, pruning, and what a
restarted gateway finds on disk."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from simulator.buffer import Buffer, stamp

readings = st.lists(
    st.fixed_dictionaries(
        {
            "meter": st.text(min_size=1, max_size=10),
            "ts": st.integers(0, 2**31),
            "value": st.floats(0, 1e9),
        }
    ),
    min_size=1,
    max_size=5,
)


@given(readings, st.text(max_size=64), st.integers(1, 2**62))
def test_stamp_adds_epoch_and_seq_and_keeps_the_batch(
    items: list[dict[str, object]], epoch: str, seq: int
) -> None:
    doc = {"readings": items}
    stamped = stamp(json.dumps(doc).encode(), epoch, seq)
    assert json.loads(stamped) == {"epoch": epoch, "seq": seq, **doc}


@pytest.mark.parametrize("payload", [b"[1]", b"{}", b"{ }", b"not json"])
def test_stamp_refuses_what_cannot_carry_a_seq(payload: bytes) -> None:
    with pytest.raises(ValueError):
        stamp(payload, "e", 1)


def test_buffer_numbers_prunes_and_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "buffer.sqlite"
    buf = Buffer(path)
    seqs = [buf.add("G1", "parks/S/gateways/G1", b'{"readings":[%d]}' % n)[0] for n in range(5)]
    assert seqs == [1, 2, 3, 4, 5]
    assert buf.add("G2", "parks/S/gateways/G2", b'{"readings":[]}')[0] == 1  # its own counter
    epoch = buf.epoch("G1")
    assert epoch != buf.epoch("G2")
    assert buf.prune("G1", "another-epoch", 5) == 0  # covers nothing of this counter
    assert buf.prune("G1", epoch, 3) == 3
    assert buf.first_seq("G1") == 4
    waiting = buf.waiting("G1", 1, 10)
    assert [s for s, _, _ in waiting] == [4, 5]
    assert json.loads(waiting[0][2]) == {"epoch": epoch, "seq": 4, "readings": [3]}
    buf.close()
    again = Buffer(path)  # the gateway restarted: same epoch, counter and batches
    assert (again.epoch("G1"), again.last_seq("G1"), again.first_seq("G1")) == (epoch, 5, 4)
    assert again.add("G1", "parks/S/gateways/G1", b'{"readings":[5]}')[0] == 6
    assert again.unconfirmed() == 4
    assert again.topics() == {"G1": "parks/S/gateways/G1", "G2": "parks/S/gateways/G2"}
    again.close()
