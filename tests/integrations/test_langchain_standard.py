"""LangChain's own conformance suite (langchain-tests ``VectorStoreIntegrationTests``), unchanged, against
``OmnilabVectorStore.open(...)`` with the suite's own embeddings, on SQLite and PostgreSQL.

Only the abstract ``vectorstore`` fixture is provided; no test is overridden, skipped or xfailed.
"""

from __future__ import annotations

import pytest

pytest.importorskip("langchain_tests")

from langchain_tests.integration_tests import VectorStoreIntegrationTests  # noqa: E402

from omnilab.integrations.langchain import OmnilabVectorStore  # noqa: E402


class TestOmnilabVectorStoreStandard(VectorStoreIntegrationTests):
    @pytest.fixture
    def vectorstore(self, tmp_path, database_url):
        store = OmnilabVectorStore.open(tmp_path / "lab", embedding=self.get_embeddings(), database_url=database_url)
        try:
            yield store
        finally:
            store.close()
