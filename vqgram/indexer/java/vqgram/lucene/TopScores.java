package vqgram.lucene;

import java.util.Arrays;

/**
 * The k best scores seen so far (a min-heap of floats, the threshold at its root) and every
 * (doc, score) offered at or above the threshold of its time; {@link #rankings} keeps those
 * at or above the final k-th score, ties included.
 */
final class TopScores {
  private final float[] heap;
  private int size;
  private int[] docs = new int[64];
  private float[] scores = new float[64];
  private int kept;

  TopScores(int k) {
    heap = new float[Math.max(1, k)];
  }

  void offer(int doc, float score) {
    if (size == heap.length && score < heap[0]) {
      return;
    }
    if (kept == docs.length) {
      docs = Arrays.copyOf(docs, 2 * kept);
      scores = Arrays.copyOf(scores, 2 * kept);
    }
    docs[kept] = doc;
    scores[kept++] = score;
    if (size < heap.length) {
      heap[size++] = score;
      for (int i = size - 1; i > 0 && heap[(i - 1) / 2] > heap[i]; i = (i - 1) / 2) {
        swap(i, (i - 1) / 2);
      }
    } else if (score > heap[0]) {
      heap[0] = score;
      for (int i = 0; ; ) {
        int least = i;
        for (int c = 2 * i + 1; c <= 2 * i + 2 && c < size; c++) {
          if (heap[c] < heap[least]) {
            least = c;
          }
        }
        if (least == i) {
          break;
        }
        swap(i, least);
        i = least;
      }
    }
  }

  /** Every candidate {@code other} kept, offered here: the merged top k of two shares. */
  void offerAll(TopScores other) {
    for (int i = 0; i < other.kept; i++) {
      offer(other.docs[i], other.scores[i]);
    }
  }

  private void swap(int i, int j) {
    float t = heap[i];
    heap[i] = heap[j];
    heap[j] = t;
  }

  Rankings rankings() {
    float cut = size == heap.length ? heap[0] : Float.NEGATIVE_INFINITY;
    int n = 0;
    for (int i = 0; i < kept; i++) {
      if (scores[i] >= cut) {
        docs[n] = docs[i];
        scores[n++] = scores[i];
      }
    }
    return new Rankings(Arrays.copyOf(docs, n), Arrays.copyOf(scores, n));
  }
}
