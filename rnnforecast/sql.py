"""Read ``data.sql`` (a table or a query) through SQLAlchemy and ``pandas.read_sql``; no message shows a password.

A URL without ``://`` is a SQLite file path, relative to the config's folder like ``data.path``.
``${NAME}`` in the URL expands from the environment when the data is read, and ``password_env``
names a variable holding the password: the run's config.yaml keeps the URL as written, never the secret.
"""

from __future__ import annotations

import importlib.util
import os
import re

import pandas as pd

from .config import SqlConfig, mask_password, sqlite_file
from .errors import ConfigError, DataError
from .masking import unencoded_at

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _expand(url: str) -> str:
    def value(m: re.Match) -> str:
        name = m.group(1)
        if name not in os.environ:
            raise ConfigError(
                f"the URL uses ${{{name}}}, but the environment variable {name} is not set",
                where="data.sql.url",
                fix=f"export {name}=... before running rnnforecast",
            )
        return os.environ[name]

    return _VAR.sub(value, url)


def _sqlite_url(url: str, base_dir: str) -> str:
    """A SQLite file named by path (or a relative ``sqlite:///file``), as an absolute ``sqlite:///`` URL."""
    file = sqlite_file(url, base_dir)
    if file is None:
        raise ConfigError("an in-memory SQLite database holds no data", where="data.sql.url", fix="name a SQLite file")
    if not file.is_file():  # SQLite would create an empty database and report a missing table
        raise DataError("SQLite database file not found", where=str(file), fix="check data.sql.url")
    return f"sqlite:///{file}"


def resolve_url(sql: SqlConfig, base_dir: str):
    """The ``sqlalchemy.engine.URL`` to connect to: variables expanded, the password put in, a driver chosen."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    url = _expand(sql.url)
    if sqlite_file(url, base_dir) is not None or url.startswith("sqlite:") or url.strip() == ":memory:":
        url = _sqlite_url(url, base_dir)
    refuse_unencoded_at(url, "data.sql.url")
    try:
        u = make_url(url)
    except ArgumentError:
        raise ConfigError(
            f"not a database URL (scheme {url.split(':', 1)[0]!r})",
            where="data.sql.url",
            fix="write dialect://user@host/database, e.g. postgresql://me@127.0.0.1/db, or a SQLite file path",
        ) from None
    if sql.password_env:
        if sql.password_env not in os.environ:
            raise ConfigError(
                f"data.sql.password_env names {sql.password_env}, which is not set",
                where="data.sql.password_env",
                fix=f"export {sql.password_env}=... before running rnnforecast",
            )
        u = u.set(password=os.environ[sql.password_env])
    if u.drivername == "postgresql" and importlib.util.find_spec("psycopg2") is None:
        u = u.set(drivername="postgresql+psycopg")  # psycopg 3 (the `sql` extra); SQLAlchemy defaults to psycopg2
    return u


def refuse_unencoded_at(url: str, where: str) -> None:
    """A ConfigError (that shows no part of the URL) when its password holds an unencoded ``@``: SQLAlchemy would
    take the rest of the password for the host and print it in its errors."""
    if unencoded_at(url):
        raise ConfigError(
            "the password in the URL holds an unencoded '@'",
            where=where,
            fix="write each '@' of the password as %40"
            + (", or leave the password out and use data.sql.password_env" if where == "data.sql.url" else ""),
        )


def shown(sql: SqlConfig, base_dir: str = ".") -> str:
    """The source for messages and records: the URL with ``***`` for any password, then the table or query."""
    try:
        url = mask_password(resolve_url(sql, base_dir).render_as_string(hide_password=True))
    except (ConfigError, DataError):
        url = mask_password(sql.url)
    what = f"table {sql.table}" if sql.table else "query"
    return f"{url} ({what})"


def read(sql: SqlConfig, base_dir: str) -> pd.DataFrame:
    """The rows of ``sql.table`` or ``sql.query``; every error names the masked URL and never the password."""
    import sqlalchemy

    u = resolve_url(sql, base_dir)
    where = shown(sql, base_dir)
    try:
        engine = sqlalchemy.create_engine(u)
        with engine.connect() as conn:
            if sql.table:
                _check_table(conn, sql.table, where)
                df = pd.read_sql_table(sql.table, conn)
            else:
                df = pd.read_sql(sqlalchemy.text(sql.query), conn)
    except ModuleNotFoundError as e:
        raise ConfigError(
            f"the database driver {e.name!r} is not installed",
            where=where,
            fix="pip install 'rnnforecast[sql]' (psycopg for PostgreSQL)",
        ) from None
    except (sqlalchemy.exc.SQLAlchemyError, pd.errors.DatabaseError) as e:  # pandas wraps a failed query (syntax)
        first = str(getattr(e, "orig", None) or e.__cause__ or e).strip().splitlines()
        raise DataError(
            f"the database refused: {mask_password(first[0] if first else type(e).__name__, u.password)[:200]}",
            where=where,
            fix="check data.sql (URL, credentials, query) and that the server is running",
        ) from None
    finally:
        if "engine" in locals():
            engine.dispose()
    if df.empty:
        raise DataError("the query returned no rows", where=where, fix="check data.sql.query or data.sql.table")
    return df


def _check_table(conn, table: str, where: str) -> None:
    import sqlalchemy

    from .errors import did_you_mean

    names = sqlalchemy.inspect(conn).get_table_names()
    if table not in names:
        raise DataError(
            f"table {table!r} not found{did_you_mean(table, names)}",
            where=where,
            fix=f"use one of: {', '.join(names[:12]) or '(the database has no tables)'}",
        )
