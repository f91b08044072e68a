"""16 writers racing against DynamoDB on moto's server: no duplicate, no gap, no lost update."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from maas.errors import ConflictError
from maas.registry import Registry

WRITERS = 16


def test_racing_registrations_get_unique_gapless_version_numbers(
    dynamo_registry: Registry, artifacts: dict[str, Path]
) -> None:
    with ThreadPoolExecutor(WRITERS) as pool:
        numbers = list(
            pool.map(lambda _: dynamo_registry.register("sum", artifacts["sum"]).version, range(WRITERS))
        )
    assert sorted(numbers) == list(range(1, WRITERS + 1))
    stored = [v.version for v in dynamo_registry.versions("sum", limit=100).items]
    assert stored == list(range(1, WRITERS + 1))


def test_racing_promotions_each_succeed_or_conflict_and_history_matches_the_successes(
    dynamo_registry: Registry, artifacts: dict[str, Path]
) -> None:
    for _ in range(4):
        dynamo_registry.register("sum", artifacts["sum"])
    start = dynamo_registry.promote("sum", "prod", 1)

    def promote(writer: int) -> tuple[int, int] | None:
        version = writer % 4 + 1
        try:
            # Each writer read revision 1 and writes on that basis: exactly one may win.
            return version, dynamo_registry.promote(
                "sum", "prod", version, expected_revision=start.revision
            ).revision
        except ConflictError:
            return None

    with ThreadPoolExecutor(WRITERS) as pool:
        outcomes = list(pool.map(promote, range(WRITERS)))
    winners = [outcome for outcome in outcomes if outcome is not None]
    assert len(winners) == 1
    history = dynamo_registry.history("sum", "prod").items
    assert len(history) == 2
    assert (history[0].weights, history[0].revision) == ({winners[0][0]: 100}, winners[0][1])
    assert dynamo_registry.alias("sum", "prod").weights == {winners[0][0]: 100}


def test_unconditioned_racing_promotions_all_land_in_history(
    dynamo_registry: Registry, artifacts: dict[str, Path]
) -> None:
    for _ in range(4):
        dynamo_registry.register("sum", artifacts["sum"])

    def promote(writer: int) -> int | None:
        for _ in range(50):  # a client retrying on conflict, as the CLI advises
            try:
                return dynamo_registry.promote("sum", "prod", writer % 4 + 1).revision
            except ConflictError:
                continue
        return None

    with ThreadPoolExecutor(WRITERS) as pool:
        revisions = [r for r in pool.map(promote, range(WRITERS)) if r is not None]
    history = dynamo_registry.history("sum", "prod", limit=100).items
    # Every successful call has exactly one history entry, and nothing else does.
    assert sorted(revisions) == sorted(h.revision for h in history)
    assert sorted(revisions) == list(range(1, len(revisions) + 1))


def test_racing_registrations_of_one_name_in_two_cases_leave_one_model(
    dynamo_registry: Registry, artifacts: dict[str, Path]
) -> None:
    def register(writer: int) -> str | None:
        name = "digits" if writer % 2 else "Digits"
        try:
            return dynamo_registry.register(name, artifacts["sum"]).name
        except ConflictError as error:
            assert "names are unique regardless of case" in error.message
            return None

    with ThreadPoolExecutor(WRITERS) as pool:
        names = {name for name in pool.map(register, range(WRITERS)) if name is not None}
    assert len(names) == 1
    assert [head.name for head in dynamo_registry.models().items] == list(names)


def test_racing_creations_of_one_alias_in_two_cases_leave_one_alias(
    dynamo_registry: Registry, artifacts: dict[str, Path]
) -> None:
    dynamo_registry.register("sum", artifacts["sum"])

    def promote(writer: int) -> str | None:
        try:
            return dynamo_registry.promote("sum", "prod" if writer % 2 else "PROD", 1).alias
        except ConflictError:
            return None

    with ThreadPoolExecutor(WRITERS) as pool:
        aliases = {alias for alias in pool.map(promote, range(WRITERS)) if alias is not None}
    assert len(aliases) == 1
    assert [a.alias for a in dynamo_registry.aliases("sum")] == list(aliases)


def test_a_deletion_racing_promotions_of_the_same_revision_either_wins_whole_or_loses(
    dynamo_registry: Registry, artifacts: dict[str, Path]
) -> None:
    dynamo_registry.register("sum", artifacts["sum"])
    dynamo_registry.register("sum", artifacts["sum"])
    read = dynamo_registry.promote("sum", "prod", 1)

    def write(writer: int) -> str | None:
        try:
            if writer == 0:
                dynamo_registry.delete_alias("sum", "prod", expected_revision=read.revision)
                return "delete"
            dynamo_registry.promote("sum", "prod", 2, expected_revision=read.revision)
            return "promote"
        except ConflictError:
            return None

    with ThreadPoolExecutor(WRITERS) as pool:
        winners = [w for w in pool.map(write, range(WRITERS)) if w is not None]
    assert len(winners) == 1
    history = dynamo_registry.history("sum", "prod").items
    assert [h.action for h in history] == [winners[0], "promote"]
    assert ([a.alias for a in dynamo_registry.aliases("sum")] == []) == (winners[0] == "delete")
