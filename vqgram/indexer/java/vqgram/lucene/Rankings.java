package vqgram.lucene;

import java.io.IOException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import org.apache.lucene.document.Document;
import org.apache.lucene.index.BinaryDocValues;
import org.apache.lucene.index.DocValues;
import org.apache.lucene.index.IndexReader;
import org.apache.lucene.index.LeafReaderContext;
import org.apache.lucene.index.NumericDocValues;
import org.apache.lucene.index.StoredFields;
import org.apache.lucene.index.Term;
import org.apache.lucene.search.BooleanClause;
import org.apache.lucene.search.BooleanQuery;
import org.apache.lucene.search.BoostQuery;
import org.apache.lucene.search.DocIdSetIterator;
import org.apache.lucene.search.IndexSearcher;
import org.apache.lucene.search.Query;
import org.apache.lucene.search.Scorable;
import org.apache.lucene.search.ScoreDoc;
import org.apache.lucene.search.ScoreMode;
import org.apache.lucene.search.SimpleCollector;
import org.apache.lucene.search.TermQuery;

/**
 * Rankings as primitive arrays, and queries built from arrays, for vqgram's Python side (pyjnius).
 *
 * <p>pyjnius turns every ScoreDoc of a TopDocs into a Python object, one JNI
 * call per field: a full ranking of 9,500 documents took ~100 ms that way, and
 * the 116 hits of a top 100 with their stored fields ~15 ms. Here matches come
 * back as an int[] of doc numbers and a float[] of scores, which pyjnius
 * converts in one call each, and the caller orders ties by its own id.
 *
 * <p>Built with {@code javac --release 17} from this file ({@code make java});
 * the .class beside it is what vqgram loads.
 */
public final class Rankings {
  private final int[] docs;
  private final float[] scores;

  private Rankings(int[] docs, float[] scores) {
    this.docs = docs;
    this.scores = scores;
  }

  /** Doc numbers (in the searcher's top-level reader) of every match, in collection order. */
  public int[] docs() {
    return docs;
  }

  /** The score of each match, parallel to {@link #docs()}. */
  public float[] scores() {
    return scores;
  }

  /** Every document {@code query} matches, with its score under the searcher's similarity. */
  public static Rankings all(IndexSearcher searcher, Query query) throws IOException {
    return collect(searcher, query, new AllMatches(searcher.getIndexReader().numDocs()));
  }

  /**
   * Every document {@code disjunction} matches, scored by the Jaccard index
   * J = s / (|B| + |A| - s): the searcher must rank by BooleanSimilarity, so
   * the disjunction of the query's |A| = {@code querySize} words scores
   * s = |A ∩ B|, and the NUMERIC doc values {@code sizeField} hold |B|. The
   * same float arithmetic as vqgram's FunctionScoreQuery, which costs a
   * chain of value-source calls per document.
   */
  public static Rankings jaccard(IndexSearcher searcher, Query disjunction, int querySize, String sizeField)
      throws IOException {
    return collect(searcher, disjunction, new JaccardMatches(searcher.getIndexReader().numDocs(), querySize, sizeField));
  }

  /**
   * The top {@code k} of {@code query} by score, and past k every document tied
   * with the k-th (Lucene breaks ties by doc number; the caller, by id). The
   * plain top-k search keeps MaxScore skipping; {@code margin} more hits show
   * whether the k-th is tied, and only then does {@code searchAfter} read on.
   */
  public static Rankings top(IndexSearcher searcher, Query query, int k, int margin) throws IOException {
    int n = k + margin;
    ScoreDoc[] batch = searcher.search(query, n).scoreDocs;
    List<ScoreDoc> docs = new ArrayList<>(Arrays.asList(batch));
    if (batch.length > k) {
      float cut = batch[k - 1].score;
      while (batch.length == n && batch[n - 1].score == cut) {
        batch = searcher.searchAfter(batch[n - 1], query, n).scoreDocs;
        docs.addAll(Arrays.asList(batch));
      }
      docs.removeIf(sd -> sd.score < cut);
    }
    int[] ids = new int[docs.size()];
    float[] scores = new float[docs.size()];
    for (int i = 0; i < ids.length; i++) {
      ids[i] = docs.get(i).doc;
      scores[i] = docs.get(i).score;
    }
    return new Rankings(ids, scores);
  }

  /**
   * BooleanQuery(SHOULD BoostQuery(TermQuery)) over {@code field}, one clause per
   * term; {@code boosts} null leaves the terms unboosted. One call instead of
   * parsing a query string (384 terms: ~3 ms) or four calls per term.
   */
  public static Query disjunction(String field, String[] terms, float[] boosts) {
    BooleanQuery.Builder query = new BooleanQuery.Builder();
    for (int i = 0; i < terms.length; i++) {
      Query term = new TermQuery(new Term(field, terms[i]));
      query.add(boosts == null ? term : new BoostQuery(term, boosts[i]), BooleanClause.Occur.SHOULD);
    }
    return query.build();
  }

  /**
   * The stored {@code fields} of each of {@code docs}, flattened doc by doc
   * (null where a document lacks a field): a page of hits' metadata in one call.
   */
  public static String[] storedValues(IndexReader reader, int[] docs, String[] fields) throws IOException {
    StoredFields stored = reader.storedFields();
    Set<String> wanted = Set.of(fields);
    String[] out = new String[docs.length * fields.length];
    for (int i = 0; i < docs.length; i++) {
      Document doc = stored.document(docs[i], wanted);
      for (int f = 0; f < fields.length; f++) {
        out[i * fields.length + f] = doc.get(fields[f]);
      }
    }
    return out;
  }

  private static Rankings collect(IndexSearcher searcher, Query query, AllMatches collector) throws IOException {
    searcher.search(query, collector);
    return new Rankings(Arrays.copyOf(collector.docs, collector.size), Arrays.copyOf(collector.scores, collector.size));
  }

  /**
   * The UTF-8 values of a BINARY doc-values field, indexed by top-level doc
   * number (null where a document has none): the stored ids of a whole
   * reader in one call, to map doc numbers to ids without a call per hit.
   */
  public static String[] binaryValues(IndexReader reader, String field) throws IOException {
    String[] out = new String[reader.maxDoc()];
    for (LeafReaderContext leaf : reader.leaves()) {
      BinaryDocValues values = DocValues.getBinary(leaf.reader(), field);
      for (int d = values.nextDoc(); d != DocIdSetIterator.NO_MORE_DOCS; d = values.nextDoc()) {
        out[leaf.docBase + d] = values.binaryValue().utf8ToString();
      }
    }
    return out;
  }

  /** Collects (doc, score) of every match into growing arrays. */
  private static class AllMatches extends SimpleCollector {
    int[] docs;
    float[] scores;
    int size;
    private int docBase;
    Scorable scorer;

    AllMatches(int expected) {
      docs = new int[Math.max(16, expected)];
      scores = new float[docs.length];
    }

    @Override
    protected void doSetNextReader(LeafReaderContext context) throws IOException {
      docBase = context.docBase;
    }

    @Override
    public void setScorer(Scorable scorer) {
      this.scorer = scorer;
    }

    @Override
    public void collect(int doc) throws IOException {
      if (size == docs.length) {
        docs = Arrays.copyOf(docs, 2 * size);
        scores = Arrays.copyOf(scores, 2 * size);
      }
      docs[size] = docBase + doc;
      scores[size] = score(doc);
      size++;
    }

    float score(int doc) throws IOException {
      return scorer.score();
    }

    @Override
    public ScoreMode scoreMode() {
      return ScoreMode.COMPLETE;
    }
  }

  /** AllMatches scoring s / (|B| + (|A| - s)) from the disjunction's score s and the doc values |B|. */
  private static final class JaccardMatches extends AllMatches {
    private final float querySize;
    private final String sizeField;
    private NumericDocValues sizes;

    JaccardMatches(int expected, int querySize, String sizeField) {
      super(expected);
      this.querySize = querySize;
      this.sizeField = sizeField;
    }

    @Override
    protected void doSetNextReader(LeafReaderContext context) throws IOException {
      super.doSetNextReader(context);
      sizes = DocValues.getNumeric(context.reader(), sizeField);
    }

    @Override
    float score(int doc) throws IOException {
      float inter = scorer.score();
      float size = sizes.advanceExact(doc) ? (float) sizes.longValue() : 0f;
      return inter / (size + (-1f * inter + querySize));
    }
  }
}
