"""Every "docs/method.md section N" cited in famt_mm/ (and tools/, configs/) names a section that
exists, and nothing cites the method description by another name."""
import glob
import os.path as osp
import re

from tests.conftest import REPO

CITATION = re.compile(r'docs/method\.md,?\s+sections?\s+'
                      r'(\d+(?:\.\d+)?(?:\s*(?:,|and|to)\s*\d+(?:\.\d+)?)*)')


def method_sections():
    text = open(osp.join(REPO, 'docs', 'method.md'), encoding='utf-8').read()
    return set(re.findall(r'^#{2,3} (\d+(?:\.\d+)?)\.? ', text, flags=re.M))


def cited_files():
    for pattern in ('famt_mm/**/*.py', 'tools/**/*.py', 'configs/**/*.py'):
        yield from glob.glob(osp.join(REPO, pattern), recursive=True)


def test_every_method_citation_resolves():
    sections = method_sections()
    assert {'1', '1.1', '1.5', '2.2', '6'} <= sections  # the headings are parsed
    citations, unresolved = 0, []
    for path in cited_files():
        text = open(path, encoding='utf-8').read()
        for match in CITATION.finditer(text):
            for number in re.findall(r'\d+(?:\.\d+)?', match.group(1)):
                citations += 1
                if number not in sections:
                    unresolved.append(f'{osp.relpath(path, REPO)}: section {number}')
    assert citations >= 10  # the package does cite it
    assert not unresolved, unresolved


def test_no_citation_of_a_method_text_outside_the_repository():
    stale = re.compile(r'famt_method\.md|\bspec(?:ification)? section', re.I)
    found = [osp.relpath(p, REPO) for p in cited_files()
             if stale.search(open(p, encoding='utf-8').read())]
    assert not found, found
