"""``naviewer review WORKSPACE``: the analyst views' core from the command line.

Lists the ranked clusters of flagged samples (what the GUI's cluster table shows), records decisions on a
cluster or on samples by id (the same store writes as the GUI, with an audit row per sample) and writes
the HTML review report (clusters with thumbnails, decisions, settings). With trusted anchors it names the
flags the anchors reach as clean samples: look at them before confirming (--reject IDS keeps them).
"""

from __future__ import annotations

import argparse
import re

ORDER = 65


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = sub.add_parser(
        "review",
        help="ranked clusters of flagged samples, bulk decisions, HTML review report",
        description=__doc__,
    )
    parser.add_argument("workspace", metavar="WORKSPACE", help="workspace directory")
    parser.add_argument("--pass", dest="pass_id", type=int, default=None, help="detection pass id (default: the latest, passing over the checks after a retrain, which follow the pass they check)")
    parser.add_argument("--embeddings", metavar="RUN:TAG", default=None,
                        help="embeddings to cluster flags with when the pass has no cluster column (workspace embeddings/RUN/TAG.npy)")
    parser.add_argument("--top", type=int, default=20, help="clusters to list (default 20)")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--confirm-cluster", type=int, metavar="I", help="mark every member of cluster I (1-based) confirmed")
    group.add_argument("--reject-cluster", type=int, metavar="I", help="mark every member of cluster I (1-based) rejected")
    group.add_argument("--later-cluster", type=int, metavar="I", help="mark every member of cluster I (1-based) later")
    for state in ("confirm", "reject", "later"):
        group.add_argument(f"--{state}", metavar="IDS", default=None,
                           help=f"mark these samples {state}{'ed' if state != 'later' else ''}: "
                                "sample ids (the window's #N, samples.csv's id), comma-separated with ranges (3,17,40-45), or @FILE "
                                "with one id a line")
    parser.add_argument("--members", type=int, metavar="I", default=None,
                        help="list the sample ids of cluster I (1-based), by review state, as --confirm / --reject read "
                        "them (the listing names no sample)")
    parser.add_argument("--undo", action="store_true", help="undo this reviewer's last decision batch")
    parser.add_argument("--reviewer", default=None, help="name recorded in the audit log (default: your login name)")
    parser.add_argument("--report", metavar="HTML", default=None, help="write the HTML review report here")
    parser.add_argument("--no-thumbnails", action="store_true", help="report without thumbnails (no need to decode the dataset)")
    parser.set_defaults(func=run)
    return parser


_DIGITS = re.compile(r"[0-9]+")


def parse_sample_ids(text: str, n: int, flag: str):
    """Sample ids from ``3,17,40-45`` or ``@FILE`` (one id a line, # comments), each checked against ``n``."""
    import numpy as np

    from naviewer.errors import NaviewerError

    source = text
    if text.startswith("@"):
        from pathlib import Path

        from naviewer.io import check_regular_file

        if not text[1:].strip():  # read as the current folder (a probe, session 30)
            raise NaviewerError(f"{flag} @: no file name after '@' (a file of sample ids is @FILE)")
        path = Path(text[1:])
        check_regular_file(path, f"{flag} id file")
        try:
            raw = path.read_text(encoding="utf-8-sig")  # a BOM (Windows editors) is not part of the first id
        except UnicodeDecodeError:  # the codec's own words ("can't decode byte 0x80 in position 128") said little
            raise NaviewerError(f"{flag}: the id file is not UTF-8 text (one sample id a line)", path) from None
        except OSError as exc:
            raise NaviewerError(f"{flag}: cannot read the id file ({exc.strerror or exc})", path) from None
        parts = [line.split("#", 1)[0].strip() for line in raw.splitlines()]
        source = str(path)
    else:
        parts = [p.strip() for p in text.split(",")]
    ids: list[int] = []
    for part in parts:
        if not part:
            continue
        low, dash, high = part.partition("-") if not part.startswith("-") else (part, "", "")
        if part.startswith("-") and _DIGITS.fullmatch(part[1:]):  # a negative id
            raise NaviewerError(f"{flag}: {part} is outside the workspace's sample ids 0-{n - 1:,}",
                                source if source != text else None)
        # plain ASCII digits only: int() also reads "1_0" as 10 and other scripts' digits, ids nobody typed
        if not _DIGITS.fullmatch(low.strip()) or (dash and not _DIGITS.fullmatch(high.strip())):
            raise NaviewerError(f"{flag}: {part!r} is not a sample id or a range of them (e.g. 3,17,40-45)",
                                source if source != text else None)
        first = int(low)
        last = int(high) if dash else first
        if first > last:
            raise NaviewerError(f"{flag}: the range {part} runs backwards (write it low-high, e.g. {last}-{first})",
                                source if source != text else None)
        if last >= n:
            raise NaviewerError(f"{flag}: {part} is outside the workspace's sample ids 0-{n - 1:,}",
                                source if source != text else None)
        if last - first >= n:
            raise NaviewerError(f"{flag}: the range {part} is longer than the workspace")
        ids.extend(range(first, last + 1))
    if not ids:
        raise NaviewerError(f"{flag}: no sample id given", source if source != text else None)
    return np.unique(np.asarray(ids, dtype=np.int64))


def _other_passes(ws, shown) -> str:
    """"other passes flagged samples: kdist pass 3: 5 (--pass 3); ..." (the six newest), or "" when none did."""
    from naviewer.analysis.reach import other_passes_with_flags

    others = other_passes_with_flags(ws.store, shown)
    return ("other passes flagged samples: " + "; ".join(f"{m} pass {i}: {f:,} (--pass {i})" for i, m, f in others[:6])
            if others else "")


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from naviewer.analysis.session import AnalysisSession
    from naviewer.cli.progress import TextProgress, count
    from naviewer.errors import NaviewerError
    from naviewer.interrupts import note_saved
    from naviewer.jobs import JobContext
    from naviewer.workspace import Workspace

    from naviewer.outputs import check_output_file, is_naviewer_report

    # an earlier report is replaced; any other file never (it may be someone's document, or the workspace's own)
    report_path = check_output_file(args.report, "--report", "review.html", "naviewer report", is_naviewer_report)
    decided = [f for f, v in (("--confirm-cluster", args.confirm_cluster), ("--reject-cluster", args.reject_cluster),
                              ("--later-cluster", args.later_cluster), ("--confirm", args.confirm),
                              ("--reject", args.reject), ("--later", args.later)) if v is not None]
    if decided and args.undo:  # it decided, then undid that very decision in the same call (a sweep, session 18)
        raise NaviewerError(f"{decided[0]} and --undo in one call would undo the decision just made: run them apart")
    ws = Workspace.open(args.workspace)
    embeddings = None
    if args.embeddings:
        run_name, _, tag = args.embeddings.partition(":")
        if not tag:
            raise NaviewerError(f"--embeddings must be RUN:TAG, got {args.embeddings!r}")
        embeddings = ws.load_embeddings(run_name, tag)
        from naviewer.defense.sanity import require_finite

        require_finite(embeddings, ws.embeddings_path(run_name, tag))
    images = None
    if args.report is not None and not args.no_thumbnails:
        from naviewer.data.store import ImageStore

        images = ImageStore.from_dataset(ws.dataset(), ctx=JobContext(TextProgress()))
    if args.pass_id is None and ws.store.review_pass_id() is None:
        raise NaviewerError(f"the workspace has no detection pass yet: run DIFT first (naviewer detect {args.workspace} "
                            f"--checkpoint CKPT, or naviewer run {args.workspace} --dift)", ws.path)
    if embeddings is None:
        from naviewer.analysis.embeddings import pass_embeddings

        # the embeddings the pass ranked, checked unchanged (None: the pass recorded none)
        found = pass_embeddings(ws, args.pass_id if args.pass_id is not None else ws.store.review_pass_id())
        embeddings = found[0] if found is not None else None
    session = AnalysisSession.from_workspace(ws, args.pass_id, images=images, embeddings=embeddings, reviewer=args.reviewer)
    clusters = session.clusters()

    shown = args.pass_id if args.pass_id is not None else ws.store.review_pass_id()

    def cluster_problem(index: int) -> NaviewerError:
        """"cluster 1 does not exist (there are 0)" named no way on when the latest pass (DIFT's, stored after the
        detectors') flagged nothing and others did (a newcomer following getting-started, session 34)."""
        others = _other_passes(ws, shown) if not clusters else ""
        return NaviewerError(f"cluster {index} does not exist (pass {shown} has {count(len(clusters), 'cluster')})"
                             + (f"; {others}" if others else ""))

    for state, index in (("confirmed", args.confirm_cluster), ("rejected", args.reject_cluster), ("later", args.later_cluster)):
        if index is None:
            continue
        if not 1 <= index <= len(clusters):
            raise cluster_problem(index)
        ids = session.review(clusters[index - 1].members, state)
        note_saved(f"{state} {len(ids)} samples of cluster {index}")
        print(f"{state}: {len(ids)} samples of cluster {index} (reviewer {session.reviewer})")
    for state, flag, text in (("confirmed", "--confirm", args.confirm), ("rejected", "--reject", args.reject),
                              ("later", "--later", args.later)):
        if text is None:
            continue
        ids = session.review(parse_sample_ids(text, session.n, flag), state)
        note_saved(f"{state} {len(ids):,} sample{'s' if len(ids) != 1 else ''}")
        print(f"{state}: {len(ids):,} sample{'s' if len(ids) != 1 else ''} (reviewer {session.reviewer})")
        unflagged = int((~session.flagged_mask[np.asarray(ids, dtype=np.int64)]).sum()) if len(ids) else 0
        if unflagged:  # the counts below are the pass's flags: "confirmed 0" under "confirmed: 24" (a newcomer)
            print(f"  {unflagged:,} of them {'is' if unflagged == 1 else 'are'} not among this pass's flags: recorded "
                  f"all the same ({'the export removes them' if state == 'confirmed' else 'kept in the export'}); "
                  "the counts below are of the pass's flags")
    if args.undo:
        ids = session.undo()
        if len(ids):
            note_saved(f"undone {len(ids)} samples")
        print(f"undone: {len(ids)} samples" if len(ids) else "nothing to undo")

    if args.members is not None:
        if not 1 <= args.members <= len(clusters):
            raise cluster_problem(args.members)
        from naviewer.analysis.review import STATE_CODE
        from naviewer.workflows.trigger_check import id_ranges

        members = np.asarray(clusters[args.members - 1].members, dtype=np.int64)
        codes = session.state_codes[members]
        print(f"cluster {args.members}: {members.size:,} samples")
        for state in ("unreviewed", "later", "confirmed", "rejected"):
            these = members[codes == STATE_CODE[state]]
            if these.size:
                print(f"  {state} ({these.size:,}): {id_ranges(these)}")
    counts = session.review_counts()
    info = ws.store.pass_info(shown) if shown is not None else None
    print(f"detection pass {shown}" + (f" ({info['method']}, run {info['run']})" if info else "") + ": "
          f"{session.n:,} samples, {sum(counts.values()):,} flagged in {count(len(clusters), 'cluster')}; "
          + ", ".join(f"{k} {v:,}" for k, v in counts.items()))
    from naviewer.workflows.finetune_record import result_line
    from naviewer.workflows.posthoc import pass_finetune_result

    finetune = pass_finetune_result(ws, shown)
    done = result_line(finetune, shown)
    retrained = bool(done) and not (finetune or {}).get("interrupted")
    if done:  # the flags still undecided were in its training data: deciding them now acts at the next training
        print(done + ("; the flags undecided then stayed in its training data" if retrained else ""))
    from naviewer.workspace.anchor_record import REPLACED_WARNING, anchors_replaced

    if info and anchors_replaced(info.get("settings"), ws.config.get("anchors")):
        print("warning: " + REPLACED_WARNING)
    if not sum(counts.values()):  # the latest pass flagged nothing: say which passes did ("confirmed 0" while 16
        others = _other_passes(ws, shown)  # of another pass were; a newcomer, session 22)
        if others:
            print(others)
    from naviewer.analysis.clusters import REACH_LEGEND

    print(f"{'#':>4} {'size':>6} {'density':>10} {'MinDist':>9} {'reach':>6}  {'reviewed':>9}  classes")
    for cl in clusters[: args.top]:
        c = session.review_counts(cl.members)
        comp = ", ".join(f"{session.class_name(lab)} {n}" for lab, n in cl.composition[:3])
        reach = f"{cl.anchor_reach:.2f}" if np.isfinite(cl.anchor_reach) else "-"
        mindist = f"{cl.mean_mindist:.4g}" if np.isfinite(cl.mean_mindist) else "-"  # "nan" read as a fault
        density = f"{cl.mean_density:.4g}" if np.isfinite(cl.mean_density) else "-"  # (a patchsearch pass: no density)
        print(f"{cl.cluster_id + 1:>4} {cl.size:>6} {density:>10} {mindist:>9} {reach:>6}  "
              f"{c['confirmed'] + c['rejected']:>4}/{cl.size:<4}  {comp}")
    if any(np.isfinite(cl.anchor_reach) for cl in clusters[: args.top]):
        print(REACH_LEGEND)
    from naviewer.analysis.reach import pass_anchors_trusted, reached_flags, reached_text

    from naviewer.analysis.reach import REACHED_LIMIT
    from naviewer.workflows.trigger_check import trigger_check_of

    check = trigger_check_of(ws, shown) if shown is not None else None  # the pass's own check: its reach, said below
    limit = check.reach_limit if check is not None else REACHED_LIMIT
    reached = reached_flags(session.scores, limit) if pass_anchors_trusted(session.settings) else np.zeros(0, np.int64)
    if len(reached):
        from naviewer.analysis.reach import latest_patchsearch, patchsearch_text, untriggered

        waiting = session.review_counts(reached)
        found = latest_patchsearch(ws.store, session.n)
        print("note: " + reached_text(len(reached), waiting["unreviewed"] + waiting["later"], limit)
              + ("" if check is not None else patchsearch_text(reached, found)))
        # the ones awaiting a decision where some are decided ("45 of them await" above 46 ids; a newcomer, session 31)
        from naviewer.analysis.review import STATE_CODE

        codes = session.state_codes[reached]
        open_ids = reached[(codes == STATE_CODE["unreviewed"]) | (codes == STATE_CODE["later"])]
        some_decided = 0 < len(open_ids) < len(reached)
        listed = open_ids if some_decided else reached
        print(("  the ids awaiting a decision: " if some_decided else "  their sample ids: ")
              + ", ".join(str(int(i)) for i in listed[:40])
              + (f", … and {len(listed) - 40:,} more" if len(listed) > 40 else "")
              + " (decide them one by one: --reject IDS / --confirm IDS, or in the window)")
        if check is not None:  # the pass's own check: what accept-all leaves, not another reading of PatchSearch
            from naviewer.workflows.trigger_check import accept_all_words

            step = "retrain" if (finetune or {}).get("kind") == "retrain" else "fine-tune"
            print("  " + accept_all_words(check, args.workspace, ahead=not retrained, retrained=retrained, step=step))
        else:
            quiet = untriggered(reached, found)
            if len(quiet):  # the two signals together: the ones to look at as one batch, every id (for --reject)
                print("  of them, PatchSearch finds no trigger in: " + ",".join(str(int(i)) for i in quiet))
    if args.report is not None:
        from naviewer.analysis.report import write_report

        path = write_report(session, report_path, finetune=finetune)
        print(f"report: {path}")
    return 0
