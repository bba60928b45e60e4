"""A dataset: the population and one patient-level column per variable (``create_dataset``).

    dataset = create_dataset()
    dataset.define_population(tables.patients.exists_for_patient())
    dataset.sex = tables.patients.sex

Assigning an attribute defines a column; each is checked (patient-level, a new name) as it is
written. ``to_query()`` gives the query model's ``Dataset`` node that engines run.
"""

from __future__ import annotations

import keyword
from typing import Any

from carelight.sde.query import nodes
from carelight.sde.query.language import Frame, QueryError, Series, _node

_RESERVED = {"patient_id", "population"}


class Dataset:
    """One row per patient in the population; assign patient-level series as columns."""

    def __init__(self) -> None:
        object.__setattr__(self, "_population", None)
        object.__setattr__(self, "_variables", {})
        object.__setattr__(self, "_dummy_data", {})

    def define_population(self, condition: Series) -> None:
        """Who is in the dataset: patients for whom ``condition`` (patient-level, bool) is true."""
        if self._population is not None:
            raise QueryError("the population is already defined: define it once")
        if not isinstance(condition, Series):
            raise QueryError(f"define_population needs a series, not {condition!r}")
        if not condition.is_patient_level:
            raise QueryError(
                "the population must have one value per patient, but this series is "
                "event-level: use exists_for_patient() or another *_for_patient() aggregate"
            )
        if condition.type is not bool:
            raise QueryError(
                f"the population must be true/false, not {nodes.type_name(condition.type)}"
            )
        object.__setattr__(self, "_population", condition)

    def configure_dummy_data(self, *, population_size: int = 10, **options: Any) -> None:
        """Settings for dummy data (how many patients, and options the generator accepts)."""
        if (
            isinstance(population_size, bool)
            or not isinstance(population_size, int)
            or population_size < 1
        ):
            raise QueryError("population_size must be a positive whole number")
        self._dummy_data.update(population_size=population_size, **options)

    @property
    def dummy_data_config(self) -> dict[str, Any]:
        return dict(self._dummy_data)

    def __setattr__(self, name: str, value: Any) -> None:
        if name.startswith("_") or not name.isidentifier() or keyword.iskeyword(name):
            raise QueryError(
                f"{name!r} cannot be a column name: use letters, digits and _ (not first)"
            )
        if name in _RESERVED:
            raise QueryError(f"{name!r} is reserved: choose another column name")
        if name in self._variables:
            raise QueryError(f"column {name!r} is already defined: define each column once")
        if isinstance(value, Frame):
            raise QueryError(
                f"column {name!r}: a dataset column is a series, not a frame; pick a column, "
                f"e.g. ….{value._table.names[1]}"
            )
        if not isinstance(value, Series):
            value = Series(_node(value))
        if not value.is_patient_level:
            raise QueryError(
                f"column {name!r} must have one value per patient, but this series is "
                "event-level: use first_for_patient(), exists_for_patient(), "
                "count_for_patient() or another *_for_patient() aggregate"
            )
        self._variables[name] = value

    def __getattr__(self, name: str) -> Series:
        try:
            return self._variables[name]
        except KeyError:
            raise AttributeError(f"the dataset has no column {name!r}") from None

    def to_query(self) -> nodes.Dataset:
        """The query model of this dataset (what engines run)."""
        if self._population is None:
            raise QueryError("define the population first: dataset.define_population(…)")
        return nodes.Dataset(
            self._population._node,
            tuple((n, s._node) for n, s in self._variables.items()),
        )


def create_dataset() -> Dataset:
    return Dataset()
