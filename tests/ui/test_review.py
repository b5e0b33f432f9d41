"""Review and sign-off over the real app: score, mark, override (a reason is required), the
candidate's decision, two examiners' signatures (the same one cannot sign twice, another station's
examiner cannot sign at all), the delivery state, and the evidence video."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import av
import pytest
from fastapi.testclient import TestClient

from proctor_ui.context import UiContext
from station import session as sm
from station.db.models import EvidenceSegment
from tests.ui.conftest import PASSWORD
from tests.ui.test_station_page import HX, check_in_and_start, post, ready_a01

Client = Callable[[str | None], TestClient]


def ended_attempt(client_for: Client, ctx: UiContext) -> tuple[TestClient, str]:
    c = client_for("exam1")
    aid = check_in_and_start(c, ctx)
    assert post(c, "/station/A01/end", reason="done")[0] == 200
    return c, aid


def test_score_mark_override_review_and_two_signatures(client_for: Client, ui_ctx: UiContext) -> None:
    ready_a01(ui_ctx)
    ui_ctx.users.add("exam3", "examiner", PASSWORD, ("A01",))
    c, aid = ended_attempt(client_for, ui_ctx)
    base = f"/attempt/{aid}"
    status, text = post(c, f"{base}/score")
    assert status == 200 and "K13-1" in text and "100" in text
    status, text = post(c, f"{base}/mark", item="K13", code="K13-1a", count="2", note="两个标示名称错误")
    assert status == 200 and "K13-1a" in text and "-4" in text
    status, text = post(c, f"{base}/override", item="K13", row="K13-3", points="50", reason=" ")
    assert status == 422 and "改分必须填写原因" in text
    assert post(c, f"{base}/override", item="K13", row="K13-3", points="70", reason="x")[0] == 422  # over 60
    status, text = post(c, f"{base}/override", item="K13", row="K13-3", points="50", reason="布置位置偏高，酌情扣分")
    assert status == 200 and "<s>60</s> → <strong>50</strong>" in text and "布置位置偏高" in text
    assert post(c, f"{base}/reviewed")[0] == 200
    status, text = post(c, f"{base}/sign")
    assert status == 409 and "has not signed or refused" in text  # the candidate first
    assert post(c, f"{base}/candidate", item="K13", decision="maybe")[0] == 422
    assert post(c, f"{base}/candidate", item="K13", decision="signed")[0] == 200
    assert client_for("exam2").post(f"{base}/sign", headers=HX).status_code == 403
    assert client_for("proc1").post(f"{base}/sign", headers=HX).status_code == 403
    status, text = post(c, f"{base}/sign")
    assert status == 200 and "exam1" in text and "1 / 2" in text
    status, text = post(c, f"{base}/sign")
    assert status == 409 and "already signed" in text
    status, text = post(client_for("exam3"), f"{base}/sign")
    assert status == 200 and "排队上传中" in text
    assert ui_ctx.services.attempt(aid).state == sm.State.QUEUED
    result = ui_ctx.services.sign_off.result(aid)
    assert result is not None and result.document["items"][0]["score"] == 82
    delivery = client_for("proc1").get(f"{base}/delivery")
    assert delivery.status_code == 200 and "hx-trigger=\"every 2s\"" in delivery.text


def test_anyone_reads_a_review_and_unknown_attempts_are_404(client_for: Client, ui_ctx: UiContext) -> None:
    ready_a01(ui_ctx)
    _, aid = ended_attempt(client_for, ui_ctx)
    for name in ("proc1", "exam2", "admin1"):
        r = client_for(name).get(f"/attempt/{aid}/review", headers={"accept": "text/html"})
        assert r.status_code == 200 and "只读" in r.text and f"/attempt/{aid}/score" not in r.text
        # the state in words, not the code (the code stays in the title, for support)
        assert '<strong class="attempt-state"><span title="ended">待评分</span></strong>' in r.text
    english = client_for("proc1")
    english.get("/lang/en")
    assert '<span title="ended">Awaiting scoring</span>' in english.get(f"/attempt/{aid}/review",
                                                                  headers={"accept": "text/html"}).text
    c = client_for("exam1")
    assert c.get("/attempt/nope/review", headers={"accept": "text/html"}).status_code == 404
    assert c.post("/attempt/nope/score", headers=HX).status_code == 404
    assert c.get("/evidence/nope.mp4").status_code == 404


def test_bad_review_input_never_500(client_for: Client, ui_ctx: UiContext) -> None:
    ready_a01(ui_ctx)
    c, aid = ended_attempt(client_for, ui_ctx)
    base = f"/attempt/{aid}"
    assert post(c, f"{base}/override", item="K13", row="K13-1", points="10", reason="r")[0] == 409  # not scored yet
    assert post(c, f"{base}/mark", item="K13", code="K13-1a")[0] == 200  # a mark before scoring counts at scoring
    post(c, f"{base}/score")
    for path, data in ((f"{base}/mark", {}), (f"{base}/mark", {"item": "K13", "code": "K13-1a", "count": "x"}),
                       (f"{base}/mark", {"item": "K99", "code": "?"}), (f"{base}/override", {}),
                       (f"{base}/override", {"item": "K13", "row": "K13-1", "points": "nan", "reason": "r"}),
                       (f"{base}/gap", {"item": "K13", "choice": "resit", "reason": "r"}), (f"{base}/gap", {}),
                       (f"{base}/candidate", {}), (f"{base}/sign", {})):
        assert post(c, path, **data)[0] in (409, 422), (path, data)


def _segment(tmp: Path) -> Path:
    """A real 2 s H.264 clip in Matroska, as the recorder stores segments."""
    path = tmp / "evidence" / "A01" / "overview" / "seg1.mkv"
    path.parent.mkdir(parents=True)
    with av.open(str(path), "w", format="matroska") as out:
        stream = out.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(20):
            frame = av.VideoFrame(64, 48, "yuv420p")
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def test_evidence_segment_served_as_mp4_with_ranges(client_for: Client, ui_ctx: UiContext) -> None:
    path = _segment(ui_ctx.data_dir)
    with ui_ctx.services.db.write() as tx:
        tx.add(EvidenceSegment(segment_id="seg1", station="A01", camera="overview",
                               path=str(path.relative_to(ui_ctx.data_dir)), sha256="0" * 64,
                               size_bytes=path.stat().st_size, start_utc_ns=0, end_utc_ns=2_000_000_000,
                               start_mono_ns=0, end_mono_ns=2_000_000_000, clock_run="test", frames=20,
                               codec="h264", width=64, height=48, recovered=0))
    c = client_for("proc1")
    r = c.get("/evidence/seg1.mp4")
    assert r.status_code == 200 and r.headers["content-type"] == "video/mp4"
    assert r.content[4:8] == b"ftyp" and r.content.index(b"moov") < r.content.index(b"mdat")  # faststart
    part = c.get("/evidence/seg1.mp4", headers={"range": "bytes=0-99"})
    assert part.status_code == 206 and len(part.content) == 100
    with av.open(str(ui_ctx.data_dir / "clips" / "seg1.mp4")) as clip:
        assert sum(1 for _ in clip.demux(clip.streams.video[0]) if _.size) == 20
    assert client_for(None).get("/evidence/seg1.mp4").status_code == 401


@pytest.mark.parametrize("who", ["exam1", "proc1"])
def test_the_review_page_has_a_player(client_for: Client, ui_ctx: UiContext, who: str) -> None:
    ready_a01(ui_ctx)
    _, aid = ended_attempt(client_for, ui_ctx)
    r = client_for(who).get(f"/attempt/{aid}/review", headers={"accept": "text/html"})
    assert 'id="review-video"' in r.text and "/static/review.js" in r.text
