"""A private cluster makes its folder on first use, not when constructed: the demo (and anyone)
registers ``destroy()`` right after construction, and a signal between a folder made in the
constructor and that registration used to leak a ``sqlambda-pg-*`` folder."""

from __future__ import annotations

import glob
import tempfile

from sqlambda.targets.postgres.cluster import Cluster


def test_constructing_makes_nothing_and_destroying_an_unstarted_cluster_is_a_no_op():
    pattern = f"{tempfile.gettempdir()}/sqlambda-pg-*"
    before = set(glob.glob(pattern))
    cluster = Cluster()
    assert cluster.base is None and set(glob.glob(pattern)) == before
    cluster.destroy()
    assert set(glob.glob(pattern)) == before
    folder = cluster.datadir.parent  # first use: the folder exists from now on, and destroy removes it
    assert folder.is_dir() and str(folder) in set(glob.glob(pattern)) - before
    cluster.destroy()
    assert not folder.exists()
