"""The upstream's model list of each Modellix account: what each account may submit.

Modellix answers ``GET /api/v1/models`` per API key: two accounts (an early-access one, a
regional one) can list different models, at different display prices. So the pin stage
(does this slug exist, is it listed) and the price stage (the list price) read the list
of the account the caller's virtual key bills to, never another account's.

- Pass-through callers (their own Modellix key) and every caller of a single-account proxy
  share one list (``shared``): fetched with the default account's key (else the first
  configured account's), else the caller's own, and kept fresh by the ``model-list``
  component (``proxy.background``).
- Every other account's list is made on its first lookup and fetched then, with that
  account's key, under the same policy (``UpstreamModels.ensure``: again once stale; a
  failure keeps the last good list and backs off). A fresh list costs a dict lookup.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from proxy.catalog.upstream_models import Fetch, UpstreamModels


class ModelLists:
    """One ``UpstreamModels`` per account (by name); ``None`` names the shared list."""

    def __init__(self, shared: UpstreamModels) -> None:
        self.shared = shared
        self._lists: dict[str, UpstreamModels] = {}
        self._credentials: dict[str, str] = {}
        self._fetch: Fetch | None = None

    @property
    def enabled(self) -> bool:
        return self.shared.enabled

    def connect(
        self, fetch: Fetch, credentials: Mapping[str, str], shared_account: str | None
    ) -> None:
        """Where lists come from: ``fetch`` with each account's ``Authorization`` value
        (``credentials``, by account name); ``shared_account``'s list is the shared one."""
        self._fetch = fetch
        self._credentials = dict(credentials)
        shared_credential = self._credentials.get(shared_account or "")
        self.shared.connect(fetch, shared_credential)
        self._lists = {shared_account: self.shared} if shared_account is not None else {}

    def of(self, account: str | None) -> UpstreamModels:
        """The list ``account``'s callers submit against (``None``, an account without a key
        here: the shared one). Made, empty, on first lookup; ``ensure`` fetches it."""
        if account is None:
            return self.shared
        found = self._lists.get(account)
        if found is not None:
            return found
        credential = self._credentials.get(account)
        if credential is None or self._fetch is None:
            return self.shared
        listing = self.shared.sibling()
        listing.connect(self._fetch, credential)
        self._lists[account] = listing
        return listing

    def lists(self) -> Iterator[UpstreamModels]:
        """Every list made so far, the shared one first, each once."""
        yield self.shared
        for listing in self._lists.values():
            if listing is not self.shared:
                yield listing

    def accounts(self) -> Mapping[str, UpstreamModels]:
        """The accounts whose list was looked up (or is the shared one), by name."""
        return dict(self._lists)

    def __contains__(self, slug: object) -> bool:
        """Whether any account lists ``slug`` (metric labels: bounded by ``max_models`` per
        account)."""
        return any(slug in listing for listing in self.lists())
