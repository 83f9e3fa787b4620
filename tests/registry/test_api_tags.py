"""Listing tags (end-8a, end-8b): order, ``n``/``last`` pagination and the ``Link`` header.

Spec: distribution-spec v1.1 "Listing Tags": tags in lexical or ASCIIbetical order; ``n`` tags at most
(fewer only at the end or with a ``Link``); ``n=0`` is an empty list without ``Link``; ``last`` is exclusive.
"""

from __future__ import annotations

import re

import pytest

from .conftest import RegistryClient, assert_error, make_image

pytestmark = pytest.mark.anyio

TAGS = ["v1", "v2", "latest", "Stable", "a-b", "a.b", "a_b", "0.1", "Zed", "beta"]


def is_sorted(tags: list[str]) -> bool:
    """ASCIIbetical (Go ``sort.Strings``) or case-insensitive lexical order, as the spec allows."""
    return tags in (sorted(tags), sorted(tags, key=lambda t: (t.lower(), t)))


async def tag_all(client: RegistryClient, name: str, tags: list[str]) -> None:
    image = make_image("tags")
    await client.push(name, image)
    for tag in tags:
        response = await client.put_manifest(name, tag, image)
        assert response.status_code == 201, response.text


async def test_tags_are_listed_in_order(client: RegistryClient) -> None:
    await tag_all(client, "team/app", TAGS)
    response = await client.http.get("/v2/team/app/tags/list")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["docker-distribution-api-version"] == "registry/2.0"
    body = response.json()
    assert body["name"] == "team/app"
    assert sorted(body["tags"]) == sorted(TAGS)
    assert is_sorted(body["tags"])
    assert "link" not in response.headers


async def test_repository_without_tags_lists_none(client: RegistryClient) -> None:
    await client.push("repo", make_image("untagged"))
    response = await client.http.get("/v2/repo/tags/list")
    assert response.status_code == 200
    assert response.json() == {"name": "repo", "tags": []}


async def test_repository_with_only_blobs_lists_no_tags(client: RegistryClient) -> None:
    await client.push_blob("repo", b"just a blob")
    response = await client.http.get("/v2/repo/tags/list")
    assert response.status_code == 200
    assert response.json() == {"name": "repo", "tags": []}


async def test_unknown_repository_is_name_unknown(client: RegistryClient) -> None:
    response = await client.http.get("/v2/nobody/tags/list")
    assert assert_error(response, 404, "NAME_UNKNOWN") == {"name": "nobody"}


async def test_tags_of_other_repositories_are_not_listed(client: RegistryClient) -> None:
    await tag_all(client, "one", ["a", "b"])
    await tag_all(client, "two", ["c"])
    assert (await client.http.get("/v2/two/tags/list")).json() == {"name": "two", "tags": ["c"]}


async def test_pages_follow_the_link_header_to_the_end(client: RegistryClient) -> None:
    await tag_all(client, "repo", TAGS)
    everything = (await client.http.get("/v2/repo/tags/list")).json()["tags"]
    seen: list[str] = []
    url = "/v2/repo/tags/list?n=3"
    pages = 0
    while True:
        response = await client.http.get(url)
        assert response.status_code == 200
        page = response.json()["tags"]
        pages += 1
        link = response.headers.get("link")
        if link is not None:
            assert len(page) == 3  # fewer than n only on the last page
            m = re.fullmatch(r'<(/v2/repo/tags/list\?[^>]+)>; rel="next"', link)
            assert m is not None, link
            url = m[1]
        seen += page
        if link is None:
            break
    assert seen == everything
    assert pages == 4


async def test_link_header_names_n_and_the_last_tag(client: RegistryClient) -> None:
    await tag_all(client, "team/app", ["a", "b", "c"])
    response = await client.http.get("/v2/team/app/tags/list", params={"n": "2"})
    assert response.json() == {"name": "team/app", "tags": ["a", "b"]}
    assert response.headers["link"] == '</v2/team/app/tags/list?n=2&last=b>; rel="next"'


async def test_last_page_ending_exactly_at_the_end_has_no_link(client: RegistryClient) -> None:
    await tag_all(client, "repo", ["a", "b", "c", "d"])
    response = await client.http.get("/v2/repo/tags/list", params={"n": "2", "last": "b"})
    assert response.json()["tags"] == ["c", "d"]
    assert "link" not in response.headers


async def test_n_zero_is_an_empty_list_without_link(client: RegistryClient) -> None:
    await tag_all(client, "repo", ["a", "b"])
    response = await client.http.get("/v2/repo/tags/list", params={"n": "0"})
    assert response.status_code == 200
    assert response.json() == {"name": "repo", "tags": []}
    assert "link" not in response.headers


async def test_n_larger_than_the_tag_count_returns_everything(client: RegistryClient) -> None:
    await tag_all(client, "repo", ["a", "b"])
    response = await client.http.get("/v2/repo/tags/list", params={"n": "50000"})
    assert response.json()["tags"] == ["a", "b"]
    assert "link" not in response.headers


async def test_last_is_exclusive_and_works_without_n(client: RegistryClient) -> None:
    await tag_all(client, "repo", ["a", "b", "c", "d"])
    response = await client.http.get("/v2/repo/tags/list", params={"last": "b"})
    assert response.json()["tags"] == ["c", "d"]


async def test_last_need_not_be_an_existing_tag(client: RegistryClient) -> None:
    await tag_all(client, "repo", ["a", "c", "e"])
    response = await client.http.get("/v2/repo/tags/list", params={"last": "b", "n": "1"})
    assert response.json()["tags"] == ["c"]
    assert response.headers["link"] == '</v2/repo/tags/list?n=1&last=c>; rel="next"'


async def test_last_after_every_tag_is_an_empty_page(client: RegistryClient) -> None:
    await tag_all(client, "repo", ["a", "b"])
    response = await client.http.get("/v2/repo/tags/list", params={"last": "zzz"})
    assert response.json() == {"name": "repo", "tags": []}


@pytest.mark.parametrize("n", ["x", "-2", "2.0", "1e2", "²", "٣"])
@pytest.mark.backend_independent
async def test_invalid_n_is_pagination_number_invalid(client: RegistryClient, n: str) -> None:
    """Regression: a Unicode digit such as '²' passed ``str.isdigit`` and crashed ``int()`` into a 500."""
    await tag_all(client, "repo", ["a"])
    response = await client.http.get("/v2/repo/tags/list", params={"n": n})
    assert_error(response, 400, "PAGINATION_NUMBER_INVALID")


async def test_deleted_tag_is_no_longer_listed(client: RegistryClient) -> None:
    await tag_all(client, "repo", ["a", "b"])
    assert (await client.http.delete("/v2/repo/manifests/a")).status_code == 202
    assert (await client.http.get("/v2/repo/tags/list")).json()["tags"] == ["b"]
