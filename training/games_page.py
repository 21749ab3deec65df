"""`vzero games`: a run's `games.jsonl` as one self-contained HTML page, to read self-play the way it was played.

Per game: the civilian image and what the spy saw, every clue in speaking order with the speaker's role, reward
and advantage (the whole reply folded under it), every vote with its reward and advantage, and the RAE baselines.
Images come from the run's pair dataset (embedded as small PNGs), so the page needs nothing beside itself.
"""

from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from PIL import Image

from datagen.errors import ConfigError, DatasetError
from datagen.loading import load_pairs
from training.checkpoint import RUN_FILE
from training.game import BLANK_COLOUR
from training.transcripts import read_games

THUMBNAIL_WIDTH = 320
STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
section.game { border: 1px solid #ccc; border-radius: 6px; padding: 0.8em 1em; margin: 1em 0; }
.images { display: flex; gap: 1em; } .images figure { margin: 0; } figcaption { font-size: 0.85em; color: #555; }
table { border-collapse: collapse; margin: 0.5em 0; } td, th { border: 1px solid #ddd; padding: 0.25em 0.5em; }
th { background: #f4f4f4; text-align: left; } .spy { color: #b00020; font-weight: 600; }
.invalid { color: #999; font-style: italic; } .hit { color: #0a7d22; } .miss { color: #b00020; }
details { font-size: 0.85em; } pre { white-space: pre-wrap; margin: 0.2em 0; }
"""


def games_page(run_dir: Path, *, steps: str = "all", data: str | None = None, with_images: bool = True) -> str:
    """The HTML page of the chosen `steps` of a run; images from `data` (default: the dataset the run trained on).

    Raises:
        ConfigError: no `games.jsonl`, or steps it does not hold.
        DatasetError: the dataset cannot be loaded (the message says how to point elsewhere).
    """
    records = read_games(run_dir)
    chosen = set(parse_steps(steps, [record["step"] for record in records]))
    records = [record for record in records if record["step"] in chosen]
    images = {}
    if with_images:
        images = _pair_images(data or _run_data(run_dir), {record["pair_id"] for record in records})
    return render_page(f"vision-zero self-play: {Path(run_dir).name}", records, images)


def _run_data(run_dir: Path) -> str:
    path = Path(run_dir) / RUN_FILE
    if not path.is_file():
        raise ConfigError(f"{run_dir}: no {RUN_FILE} to find the run's dataset in; pass --data (or --no-images)")
    return str(json.loads(path.read_text())["data"])


def _pair_images(data: str, pair_ids: Iterable[str]) -> dict[str, tuple[Image.Image, Image.Image]]:
    """(civilian, spy) of each wanted pair id that the dataset holds."""
    try:
        pairs = load_pairs(data)
    except DatasetError as error:
        raise DatasetError(f"{error} (images for the page come from {data}; pass --data or --no-images)") from error
    index = {pair_id: row for row, pair_id in enumerate(pairs["id"])}
    found = {}
    for pair_id in pair_ids:
        if pair_id in index:
            record = pairs[index[pair_id]]
            found[pair_id] = (record["civilian"], record["spy"])
    return found


def parse_steps(spec: str, available: Sequence[int]) -> list[int]:
    """Steps named by `spec`: `all`, `last`, or a list like `1,4-6`; ConfigError for steps the log lacks."""
    logged = sorted(set(available))
    if spec == "all":
        return logged
    if spec == "last":
        return logged[-1:]
    chosen: set[int] = set()
    for part in spec.split(","):
        first, _, last = part.strip().partition("-")
        if not first.isdigit() or (last and not last.isdigit()):
            raise ConfigError(f"--steps {spec!r}: expected 'all', 'last' or steps like '1,4-6'")
        chosen.update(range(int(first), int(last or first) + 1))
    missing = sorted(chosen - set(logged))
    if missing:
        shown = f"{logged[0]}..{logged[-1]}" if logged else "none"
        raise ConfigError(f"--steps {spec!r}: step(s) {missing} are not in games.jsonl (logged: {shown})")
    return sorted(chosen)


def render_page(
    title: str, records: Sequence[Mapping[str, Any]], images: Mapping[str, tuple[Image.Image, Image.Image]]
):
    """The HTML page of `records` (games.jsonl objects); `images` maps pair ids to (civilian, spy) images."""
    body = [f"<h1>{html.escape(title)}</h1>"]
    step = None
    for record in records:
        if record["step"] != step:
            step = record["step"]
            body.append(f"<h2>Step {step} &mdash; {html.escape(record['stage'])} stage trained</h2>")
        body.append(_game_section(record, images.get(record["pair_id"])))
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )


def _game_section(record: Mapping[str, Any], pair: tuple[Image.Image, Image.Image] | None) -> str:
    spy = record["spy"]
    outcome = (
        '<span class="hit">spy identified</span>'
        if record["identified"]
        else '<span class="miss">spy not identified</span>'
    )
    parts = [
        '<section class="game">',
        f"<h3>{html.escape(record['pair_id'])} ({html.escape(record['domain'])}) &mdash; spy: player {spy}, "
        f"{outcome}</h3>",
        f"<p>True change: {html.escape(record['description'] or '(none recorded)')}</p>",
        _images(record, pair),
        _clue_table(record),
        _vote_table(record),
        "</section>",
    ]
    return "\n".join(parts)


def _images(record: Mapping[str, Any], pair: tuple[Image.Image, Image.Image] | None) -> str:
    if pair is None:
        return '<p class="invalid">(images not shown: the pair is not in the dataset the page was made from)</p>'
    civilian, spy = pair
    variant = record["spy_variant"]
    if variant == "blank":
        spy = Image.new("RGB", civilian.size, BLANK_COLOUR)
    elif variant == "identical":
        spy = civilian
    return (
        '<div class="images">'
        f"<figure>{_img(civilian)}<figcaption>civilians see</figcaption></figure>"
        f"<figure>{_img(spy)}<figcaption>the spy sees ({html.escape(variant)})</figcaption></figure></div>"
    )


def _img(image: Image.Image) -> str:
    thumbnail = image.convert("RGB")
    if thumbnail.width > THUMBNAIL_WIDTH:
        thumbnail = thumbnail.resize(
            (THUMBNAIL_WIDTH, max(1, round(thumbnail.height * THUMBNAIL_WIDTH / thumbnail.width)))
        )
    buffer = io.BytesIO()
    thumbnail.save(buffer, format="PNG", optimize=True)
    return f'<img alt="" src="data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode()}">'


def _clue_table(record: Mapping[str, Any]) -> str:
    advantages = record["clue_advantages"]
    baselines = record["baselines_before"]
    rows = ["<table><tr><th>round</th><th>player</th><th>clue</th><th>clue reward</th><th>advantage</th></tr>"]
    for round_number, (order, clues) in enumerate(zip(record["order"], record["clues"]), 1):
        for seat in order:
            turn = clues[str(seat)]
            role = '<span class="spy">spy</span>' if seat == record["spy"] else "civilian"
            clue_class = "" if turn["valid"] else ' class="invalid"'
            advantage = "&mdash;" if advantages is None else _signed(advantages[str(seat)])
            rows.append(
                f"<tr><td>{round_number}</td><td>{seat} ({role})</td><td><span{clue_class}>"
                f"{html.escape(turn['clue'])}</span><details><summary>reply</summary><pre>{html.escape(turn['text'])}"
                f"</pre></details></td><td>{_signed(record['clue_rewards'][str(seat)])}</td><td>{advantage}</td></tr>"
            )
    rows.append("</table>")
    rows.append(
        f"<p>RAE baselines before this step: spy {_signed(baselines['spy'])}, civilian {_signed(baselines['civilian'])}"
        + (" (clue advantages are not used in a decision step)" if advantages is None else "")
        + "</p>"
    )
    return "\n".join(rows)


def _vote_table(record: Mapping[str, Any]) -> str:
    advantages = record["vote_advantages"]
    rows = ["<table><tr><th>voter</th><th>sample</th><th>vote</th><th>reward</th><th>advantage</th></tr>"]
    for voter, votes in record["votes"].items():
        for sample, vote in enumerate(votes):
            shown = '<span class="invalid">invalid</span>' if vote is None else html.escape(str(vote))
            if vote == record["spy"]:
                shown = f'<span class="hit">{shown}</span>'
            advantage = "&mdash;" if advantages is None else _signed(advantages[voter][sample])
            text = record["vote_texts"][voter][sample]
            rows.append(
                f"<tr><td>{html.escape(voter)}</td><td>{sample + 1}</td><td>{shown}<details><summary>reply</summary>"
                f"<pre>{html.escape(text)}</pre></details></td><td>{record['vote_rewards'][voter][sample]:+.2f}</td>"
                f"<td>{advantage}</td></tr>"
            )
    rows.append("</table>")
    return "\n".join(rows)


def _signed(value: float) -> str:
    """`+0.1250`; a zero that arithmetic made negative (-0.0) shows as +0.0000."""
    return f"{value + 0.0:+.4f}"
