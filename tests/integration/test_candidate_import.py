"""Registering candidates on a real database: one at a time (the UI) and a batch file (the import)."""

from __future__ import annotations

import pytest

from station.db.models import Candidate
from station.services import ServiceError, StationServices
from tests.integration.conftest import ManualClock


def test_registration_checks_the_check_digit_and_the_birth_date(svc: tuple[StationServices, ManualClock]) -> None:
    services, _ = svc
    with pytest.raises(ServiceError, match=r"candidate '110101199001010011': ID number \(居民身份证号码\) check digit "
                                           r"should be 5, not 1; correct it"):
        services.register_candidate("110101199001010011", "张三", "低压电工作业", "B1")
    with pytest.raises(ServiceError, match="birth date 19901301 is not a date"):
        services.register_candidate("110101199013010012", "张三", "低压电工作业", "B1")
    services.register_candidate("11010519491231002x", "李四", "低压电工作业", "B1")
    with services.db.read() as s:
        assert s.get(Candidate, "11010519491231002X") is not None  # stored as the province takes it
        assert s.query(Candidate).count() == 1
