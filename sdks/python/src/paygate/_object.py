"""API objects: dicts whose keys are also attributes (`event.data.object.id`)."""

from typing import TYPE_CHECKING, Any, Dict, Iterator, Optional

if TYPE_CHECKING:
    from ._client import PayGate


def convert(value: Any) -> Any:
    if isinstance(value, dict) and not isinstance(value, PayGateObject):
        if value.get("object") == "list":
            return ListObject(value)
        return PayGateObject(value)
    if isinstance(value, list):
        return [convert(v) for v in value]
    return value


class PayGateObject(dict):
    """A dict (the JSON as it came) whose keys read as attributes too."""

    def __init__(self, values: Optional[Dict[str, Any]] = None) -> None:
        super().__init__({k: convert(v) for k, v in (values or {}).items()})

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"{type(self).__name__} has no attribute {name!r}") from None

    def __setattr__(self, name: str, value: Any) -> None:
        if name.startswith("_"):
            object.__setattr__(self, name, value)
        else:
            self[name] = convert(value)

    def to_dict(self) -> Dict[str, Any]:
        """A plain dict, all the way down."""

        def plain(v: Any) -> Any:
            if isinstance(v, dict):
                return {k: plain(x) for k, x in v.items()}
            if isinstance(v, list):
                return [plain(x) for x in v]
            return v

        return plain(self)


class ListObject(PayGateObject):
    """A list page: `data`, `has_more`, `url`; `auto_paging_iter()` walks every page."""

    _client: Optional["PayGate"] = None
    _path: str = ""
    _params: Dict[str, Any] = {}

    def _bind(self, client: "PayGate", path: str, params: Dict[str, Any]) -> "ListObject":
        self._client, self._path, self._params = client, path, dict(params)
        return self

    def __iter__(self) -> Iterator[Any]:  # type: ignore[override]
        return iter(self.get("data", []))

    def auto_paging_iter(self) -> Iterator[Any]:
        """Every item of this page and the pages after it: older ones with `starting_after`, or
        newer ones when the list was asked for with `ending_before`."""
        page: ListObject = self
        backward = "ending_before" in self._params
        while True:
            data = page.get("data", [])
            yield from data
            if not page.get("has_more") or not data or self._client is None:
                return
            params = dict(self._params)
            if backward:
                params["ending_before"] = data[0]["id"]
            else:
                params.pop("ending_before", None)
                params["starting_after"] = data[-1]["id"]
            page = self._client._list(self._path, params)
