// Converts dlib's mmod_human_face_detector.dat into the flat weight file read by
// defacer-check (crates/check/src/mmod.rs): records of (u32 layer index, u32 count, count f32),
// little-endian, for the score convolution first and the first convolution last; each
// convolution's record is its filters [out][in][ky][kx] then its biases, each affine's is gamma
// then beta.
//
// Build against dlib 19.x/20.x sources (header-only use plus dlib/all/source.cpp):
//   g++ -O2 -std=c++17 -DDLIB_NO_GUI_SUPPORT -I<dlib> dump_mmod.cpp <dlib>/dlib/all/source.cpp \
//       -lpthread -o dump_mmod
//   ./dump_mmod mmod_human_face_detector.dat mmod_human_face_detector.f32
#include <dlib/dnn.h>
#include <fstream>
#include <iostream>
using namespace dlib;

// The network definition of dlib's examples/dnn_mmod_face_detection_ex.cpp.
template <long num_filters, typename SUBNET> using con5d = con<num_filters, 5, 5, 2, 2, SUBNET>;
template <long num_filters, typename SUBNET> using con5 = con<num_filters, 5, 5, 1, 1, SUBNET>;
template <typename SUBNET>
using downsampler = relu<affine<con5d<32, relu<affine<con5d<32, relu<affine<con5d<16, SUBNET>>>>>>>>>;
template <typename SUBNET> using rcon5 = relu<affine<con5<45, SUBNET>>>;
using net_type = loss_mmod<con<1, 9, 9, 1, 1, rcon5<rcon5<rcon5<downsampler<input_rgb_image_pyramid<pyramid_down<6>>>>>>>>;

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: dump_mmod IN.dat OUT.f32\n";
    return 2;
  }
  net_type net;
  deserialize(argv[1]) >> net;
  std::cout << net << "\n";
  std::ofstream out(argv[2], std::ios::binary);
  auto put = [&](uint32_t idx, const float* a, uint32_t na, const float* b, uint32_t nb) {
    uint32_t n = na + nb;
    out.write((const char*)&idx, 4);
    out.write((const char*)&n, 4);
    out.write((const char*)a, 4 * na);
    if (nb) out.write((const char*)b, 4 * nb);
  };
  auto con = [&](uint32_t idx, const tensor& t) { put(idx, t.host(), t.size(), nullptr, 0); };
  auto aff = [&](uint32_t idx, auto& l) {
    auto g = l.get_gamma();
    auto b = l.get_beta();
    const tensor& gt = g;
    const tensor& bt = b;
    put(idx, gt.host(), gt.size(), bt.host(), bt.size());
  };
  con(1, layer<1>(net).layer_details().get_layer_params());
  aff(3, layer<3>(net).layer_details());
  con(4, layer<4>(net).layer_details().get_layer_params());
  aff(6, layer<6>(net).layer_details());
  con(7, layer<7>(net).layer_details().get_layer_params());
  aff(9, layer<9>(net).layer_details());
  con(10, layer<10>(net).layer_details().get_layer_params());
  aff(12, layer<12>(net).layer_details());
  con(13, layer<13>(net).layer_details().get_layer_params());
  aff(15, layer<15>(net).layer_details());
  con(16, layer<16>(net).layer_details().get_layer_params());
  aff(18, layer<18>(net).layer_details());
  con(19, layer<19>(net).layer_details().get_layer_params());
  return 0;
}
