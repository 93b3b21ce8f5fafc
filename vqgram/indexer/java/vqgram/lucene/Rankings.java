package vqgram.lucene;

/**
 * A ranking as primitive arrays: the doc numbers of matches and their scores, in collection order.
 *
 * <p>pyjnius turns every ScoreDoc of a TopDocs into a Python object, one JNI
 * call per field: a full ranking of 9,500 documents took ~100 ms that way, and
 * the 116 hits of a top 100 with their stored fields ~15 ms. vqgram's helpers
 * (AllMatches, JaccardMatches, TopMatches, TermAtATime) return matches as an
 * int[] of doc numbers and a float[] of scores, which pyjnius converts in one
 * call each, and the caller orders ties by its own id.
 *
 * <p>Every class of this package is built with {@code javac --release 17} from
 * its source here ({@code make java}); the .class files beside them are what
 * vqgram loads.
 */
public final class Rankings {
  static final Rankings EMPTY = new Rankings(new int[0], new float[0]);

  private final int[] docs;
  private final float[] scores;

  Rankings(int[] docs, float[] scores) {
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
}
