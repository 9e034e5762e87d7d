"""docs/error-codes.md and the ErrorCode enum list exactly the same codes."""

import re

from tenantatlas_pipelines.config import PROJECT_ROOT
from tenantatlas_pipelines.errors import ErrorCode, TenantAtlasError


def test_documented_codes_match_the_enum() -> None:
    text = (PROJECT_ROOT / "docs" / "error-codes.md").read_text()
    documented = re.findall(r"^\| `([a-z_]+)` \|", text, flags=re.M)
    assert len(documented) == len(set(documented)), "a code is documented twice"
    assert set(documented) == {c.value for c in ErrorCode}


def test_codes_are_stable_snake_case() -> None:
    for code in ErrorCode:
        assert re.fullmatch(r"[a-z]+(_[a-z]+)*", code.value)


def test_error_survives_pickling_with_its_code() -> None:
    import pickle

    err = pickle.loads(pickle.dumps(TenantAtlasError(ErrorCode.LOCK_HELD, "busy")))
    assert err.code == ErrorCode.LOCK_HELD and err.message == "busy" and "[lock_held]" in str(err)
