"""The README's commands, run as written, in a new shell after `make lab`:
every ```sh block of README.md runs in one bash session against the test lab,
in the order the README shows them. Only the lab's name and addresses are
rewritten (the test lab runs beside `make lab`'s). A block that cannot run
here says why in an HTML comment right above it, and the list of those
blocks is pinned below, so a new block cannot slip out of the test."""

import os
import re
import subprocess

from labtools import ROOT, PlaybookRun, parse_recap, project_files

NOT_RUN_MARK = re.compile(r"<!--\s*not run by the doc test:\s*(?P<why>.+?)\s*-->\s*$")
# Blocks that cannot run here, by their first command line.
NOT_RUN = {
    "make lab    # a local multi-building fleet, converged by playbooks/site.yml",
    "HARBOR_OFFLINE_INSTALLER=~/harbor-offline-installer-v2.15.2.tgz \\",
    "ansible-runner run /tmp/run -p berth.ops.site --inventory /path/to/hosts.yml \\",
    "CONTROLLER_HOST=https://awx.example.net CONTROLLER_OAUTH_TOKEN=... \\",
    "ansible-playbook -i inventories/lab/hosts.yml playbooks/reset.yml --limit berth-lab-c1 -e reset_confirm=yes",
    "ansible-playbook -i inventories/lab/hosts.yml playbooks/site.yml --limit berth-lab-d1",
}


def readme_blocks(path):
    """[(line number, why-not-run or None, text)] of every ```sh block."""
    with open(path, encoding="utf-8") as stream:
        lines = stream.read().splitlines()
    blocks = []
    index = 0
    while index < len(lines):
        if lines[index].strip() == "```sh":
            start = index + 1
            end = start
            while lines[end].strip() != "```":
                end += 1
            mark = NOT_RUN_MARK.match(lines[index - 1].strip()) if index else None
            blocks.append((start, mark.group("why") if mark else None, "\n".join(lines[start:end])))
            index = end
        index += 1
    return blocks


def for_lab(text, lab):
    """The README names `make lab`'s lab; point the same words at the test lab."""
    octets = lab.env["BERTH_LAB_CAMPUS"].split(".")[:2]
    text = text.replace("inventories/lab/hosts.yml", os.path.relpath(lab.inventory, ROOT))
    text = text.replace("berth-lab-", lab.name + "-")
    return re.sub(r"\b10\.77\.", "%s.%s." % tuple(octets), text)


def test_every_block_is_run_or_says_why():
    blocks = readme_blocks(os.path.join(ROOT, "README.md"))
    assert blocks, "README.md has no ```sh block"
    not_run = {text.splitlines()[0] for _, why, text in blocks if why}
    assert not_run == NOT_RUN


def block_outputs(output):
    """{README line: what that block printed}, cut at the script's markers."""
    parts = re.split(r"^>>> README\.md line (\d+)$", output, flags=re.MULTILINE)
    return {int(line): text for line, text in zip(parts[1::2], parts[2::2])}


def test_the_readme_commands_work_as_written(lab, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    before = project_files(lab.name)
    script = ["set -euo pipefail", "cd %s" % ROOT]
    ran = 0
    texts = {}
    for line, why, text in readme_blocks(os.path.join(ROOT, "README.md")):
        if why:
            continue
        ran += 1
        texts[line] = text
        script.append("echo '>>> README.md line %d'" % line)
        script.append(for_lab(text, lab))
    # A new shell: no variable of make's, a home of its own.
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8"}
    try:
        proc = subprocess.run(
            ["bash", "-c", "\n".join(script)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=2400,
            check=False,
        )
    finally:
        # What the commands wrote into the checkout (image.txt, the vault
        # file) goes again; nothing that was there may have changed.
        after = project_files(lab.name)
        for path in sorted(set(after) - set(before), reverse=True):
            full = os.path.join(ROOT, path)
            if os.path.isdir(full):
                os.rmdir(full)
            else:
                os.remove(full)
        changed = sorted(p for p in before if p in after and before[p] != after[p])
    # The README's re-converge right after make lab is the lab's second
    # converge: test_lab asserts changed=0 on its recap.
    for line, text in block_outputs(proc.stdout).items():
        recap = parse_recap(text)
        if "playbooks/site.yml" in texts.get(line, "") and set(recap) == set(lab.hosts):
            lab.second_converge = PlaybookRun(["playbooks/site.yml"], 0, text, recap)
            break
    assert proc.returncode == 0, proc.stdout[-8000:]
    assert ran >= 5
    assert changed == [], changed
    assert "berth-image: " in proc.stdout
