package vqgram.lucene;

import java.io.IOException;
import java.util.Arrays;
import org.apache.lucene.index.BinaryDocValues;
import org.apache.lucene.index.DocValues;
import org.apache.lucene.index.IndexReader;
import org.apache.lucene.index.LeafReaderContext;
import org.apache.lucene.index.NumericDocValues;
import org.apache.lucene.search.DocIdSetIterator;
import org.apache.lucene.search.IndexSearcher;
import org.apache.lucene.search.Query;
import org.apache.lucene.search.Scorable;
import org.apache.lucene.search.ScoreMode;
import org.apache.lucene.search.SimpleCollector;

/**
 * Whole rankings as primitive arrays, for vqgram's Python side (pyjnius).
 *
 * <p>pyjnius turns every ScoreDoc of a TopDocs into a Python object, one JNI
 * call per field: a full ranking of 9,500 documents took ~100 ms that way.
 * Here every match is collected into an int[] of doc numbers and a float[] of
 * scores, which pyjnius converts in one call each. No priority queue either:
 * the caller orders the ranking itself (by score, then its own id).
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
