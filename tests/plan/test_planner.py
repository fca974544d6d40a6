"""The planner alone (no database): when a changed artifact is replaced in place, recreated, or
refused, and which unchanged artifacts run again because a recreate dropped them too."""

from __future__ import annotations

import pytest

from sqlambda.artifacts import Artifact
from sqlambda.errors import InstallError
from sqlambda.plan import InstalledRow, make_plan

FN = "function public.f(integer)"
GRANT = "grant execute public.f(integer) to reader"


def fn(body="v1", interface="(a integer) RETURNS text") -> Artifact:
    return Artifact(key=FN, kind="wrapper", statements=(f"CREATE OR REPLACE FUNCTION f ... {body}",),
                    drop=("DROP FUNCTION IF EXISTS f(integer)",), order=50, interface=interface)


def grant() -> Artifact:
    return Artifact(key=GRANT, kind="grant", statements=("GRANT EXECUTE ON FUNCTION f(integer) TO reader",),
                    drop=("REVOKE EXECUTE ON FUNCTION f(integer) FROM reader",), order=90, requires=(FN,))


def row(a: Artifact, interface: str | None = "") -> InstalledRow:
    return InstalledRow(a.key, a.kind, a.checksum, a.drop, a.order, a.interface if interface == "" else interface)


def actions(plan) -> dict[str, str]:
    return {s.key: s.action for s in plan.steps}


def test_a_body_change_is_replaced_in_place_and_grants_stay_untouched():
    old = fn("v1")
    p = make_plan("postgres", [fn("v2"), grant()], [row(old), row(grant())])
    assert actions(p) == {FN: "replace", GRANT: "unchanged"}


def test_an_interface_change_drops_and_creates_and_grants_again():
    old = fn("RETURNS integer", "(a integer) RETURNS integer")
    new = fn("RETURNS text", "(a integer) RETURNS text")
    p = make_plan("postgres", [new, grant()], [row(old), row(grant())])
    assert actions(p) == {FN: "recreate", GRANT: "replace"}
    step = p.steps[0]
    assert step.statements == old.drop + new.statements
    assert "RETURNS integer -> (a integer) RETURNS text" in step.summary
    # the grant runs after the function it requires
    assert [s.key for s in p.changes] == [FN, GRANT]


def test_an_interface_not_recorded_yet_is_tried_in_place():
    new = fn("v2", "(b integer) RETURNS text")
    p = make_plan("postgres", [new, grant()], [row(fn("v1"), interface=None), row(grant())])
    assert actions(p) == {FN: "replace", GRANT: "unchanged"}


def test_a_table_holding_data_is_never_recreated_for_an_interface_change():
    table = Artifact(key="table q", kind="table", statements=("CREATE TABLE q (a int, b int)",), replace="refuse",
                     interface="(a, b)")
    old = InstalledRow("table q", "table", "0" * 64, ("DROP TABLE q",), 100, "(a)")
    with pytest.raises(InstallError, match="holds data"):
        make_plan("postgres", [table], [old])


def test_recreate_mode_objects_recreate_their_dependents_in_turn():
    trig = Artifact(key="trigger t", kind="trigger", statements=("CREATE TRIGGER t ...",), drop=("DROP TRIGGER t",),
                    order=60, replace="recreate", requires=(FN,))
    after = Artifact(key="comment on t", kind="comment", statements=("COMMENT ON TRIGGER t ...",), order=70,
                     requires=("trigger t",))
    old = fn("v1", "(a integer) RETURNS trigger")
    p = make_plan("postgres", [fn("v2", "(b integer) RETURNS trigger"), trig, after],
                  [row(old), row(trig), row(after)])
    assert actions(p) == {FN: "recreate", "trigger t": "recreate", "comment on t": "replace"}
    assert p.steps[1].statements == trig.drop + trig.statements
