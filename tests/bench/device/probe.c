// The page cache's read rate of one file on 1, 4 and 16 threads, three ways:
// a shared mapping populated per thread (MADV_POPULATE_READ) then copied,
// the mapping copied with its page faults, and pread(2). What the GPU
// upload's reads could reach on the device machine (tests/bench/device/
// measure.sh runs it when built: gcc -O2 -static -pthread probe.c -o probe).
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
static char *map, *dst; static size_t len; static int nt, mode, fd;
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
static void *work(void *a){ long i=(long)a; size_t per=(len/nt+4095)&~4095UL; size_t s=i*per, e=s+per>len?len:s+per; if(s>=len) return 0;
  if(mode==0){ madvise(map+(s&~4095UL), e-(s&~4095UL), 22); memcpy(dst+s,map+s,e-s);} 
  else if(mode==1){ memcpy(dst+s,map+s,e-s);} 
  else { size_t o=s; while(o<e){ ssize_t r=pread(fd,dst+o,e-o>(1<<24)?(1<<24):e-o,o); if(r<=0)break; o+=r;} }
  return 0;}
int main(int c,char**v){ fd=open(v[1],O_RDONLY); struct stat st; fstat(fd,&st); len=st.st_size;
  dst=malloc(len); memset(dst,1,len);
  int ts[]={1,4,16}; for(int m=0;m<3;m++) for(int k=0;k<3;k++){ nt=ts[k]; mode=m;
    map=mmap(0,len,PROT_READ,MAP_SHARED,fd,0);
    pthread_t th[64]; double t0=now(); for(long i=0;i<nt;i++) pthread_create(&th[i],0,work,(void*)i); for(int i=0;i<nt;i++) pthread_join(th[i],0);
    double t=now()-t0; printf("%s threads %2d: %.3f s %.1f GB/s\n", m==0?"mmap+populate":m==1?"mmap faults  ":"pread        ", nt, t, len/t/1e9); munmap(map,len);} return 0; }
