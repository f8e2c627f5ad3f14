/* Prototype (bench/NOTES.md section 30): a streaming Leaky ReLU forward
 * that takes 2, 4 or 8 pages of 4 KiB at a time with their lines
 * interleaved, as glibc's memcpy does for large copies, against a
 * line-by-line loop and glibc's memcpy, on two OpenMP threads (each its
 * half). AVX-512; prints the fastest of 9 interleaved rounds.
 *
 *     gcc -O3 -mavx512f -fopenmp bench/page_interleave.c -o page_interleave
 *     ./page_interleave 256      # MiB per array
 */
#include <immintrin.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <time.h>
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
/* n floats, out line-aligned */
static void linear(const float*x,float*out,size_t n,float slope,int pf){
  __m512 vs=_mm512_set1_ps(slope),z=_mm512_setzero_ps();
  for(size_t i=0;i<n;i+=16){
    if(pf) _mm_prefetch((const char*)(x+i)+pf,_MM_HINT_T0);
    __m512 v=_mm512_loadu_ps(x+i);
    _mm512_stream_ps(out+i,_mm512_mask_blend_ps(_mm512_cmp_ps_mask(v,z,_CMP_GT_OQ),_mm512_mul_ps(v,vs),v));
  }
}
/* P pages interleaved: for each block of P pages, for each line offset, each page */
static void paged(const float*x,float*out,size_t n,float slope,int P,int pf){
  __m512 vs=_mm512_set1_ps(slope),z=_mm512_setzero_ps();
  const size_t page=1024; /* floats per 4 KiB */
  size_t i=0;
  for(;i+P*page<=n;i+=P*page){
    for(size_t l=0;l<page;l+=16){
      for(int p=0;p<P;p++){
        size_t j=i+p*page+l;
        if(pf) _mm_prefetch((const char*)(x+j)+pf,_MM_HINT_T0);
        __m512 v=_mm512_loadu_ps(x+j);
        _mm512_stream_ps(out+j,_mm512_mask_blend_ps(_mm512_cmp_ps_mask(v,z,_CMP_GT_OQ),_mm512_mul_ps(v,vs),v));
      }
    }
  }
  if(i<n) linear(x+i,out+i,n-i,slope,pf);
}
int main(int argc,char**argv){
  size_t bytes=(size_t)atoi(argv[1])<<20; size_t n=bytes/4;
  float*x=aligned_alloc(4096,bytes),*o=aligned_alloc(4096,bytes),*c=aligned_alloc(4096,bytes);
  for(size_t i=0;i<n;i++){x[i]=(float)((i*2654435761u)%1000)-500.f;o[i]=0;c[i]=0;}
  const char*names[]={"memcpy","linear pf0","linear t0 4K","paged2 t0 4K","paged4 t0 4K","paged4 pf0","paged8 pf0","paged4 t0 1K"};
  int V=8; double best[8]; for(int v=0;v<V;v++)best[v]=1e9;
  for(int r=0;r<9;r++) for(int v0=0;v0<V;v0++){int v=(v0+r)%V;
    double t=now();
    #pragma omp parallel num_threads(2)
    { int id=omp_get_thread_num(); size_t half=n/2; const float*xs=x+id*half; float*os=o+id*half; float*cs=c+id*half;
      switch(v){case 0: memcpy(cs,xs,half*4);break; case 1: linear(xs,os,half,0.01f,0);break; case 2: linear(xs,os,half,0.01f,4096);break;
      case 3: paged(xs,os,half,0.01f,2,4096);break; case 4: paged(xs,os,half,0.01f,4,4096);break; case 5: paged(xs,os,half,0.01f,4,0);break; case 6: paged(xs,os,half,0.01f,8,0);break; case 7: paged(xs,os,half,0.01f,4,1024);break;}
      _mm_sfence(); }
    t=now()-t; if(t<best[v])best[v]=t;}
  for(int v=0;v<V;v++) printf("%-14s %7.2f ms %5.3f\n",names[v],best[v]*1e3,best[v]/best[0]);
}
